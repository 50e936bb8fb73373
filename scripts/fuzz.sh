#!/usr/bin/env bash
# Runs every Go fuzz target of the module (each `func FuzzXxx(f *testing.F)` in a *_test.go
# file, found by grep: the list lives nowhere else) for a bounded time, one after the other,
# and prints a line per target and a summary: executions, executions per second, new
# interesting inputs, and PASS or FAIL with the failing input's file (written, as `go test
# -fuzz` does, to the package's testdata/fuzz/<Target>/, where it stays as a regression seed).
#
#   scripts/fuzz.sh                 every target for $FUZZTIME (default 30s)
#   FUZZTIME=3s scripts/fuzz.sh     the smoke run `make test` does
#   FUZZ_MATCH=Extract scripts/fuzz.sh   only targets whose package or name matches (grep -E)
#
# FUZZMINIMIZETIME (default 100x) bounds how long the fuzzer minimizes a new input before it
# goes on fuzzing; FUZZPARALLEL (default: the number of CPUs) is the number of workers. Each
# package's test binary is built once, instrumented for fuzzing, and runs its targets in the
# package directory with go test's own corpus cache ($GOCACHE/fuzz/<import path>). The
# extraction targets need root (chown, mknod) and skip without it; they work in /dev/shm
# (KILN_FUZZ_DIR overrides it). Exits 1 if any target failed.
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-100x}
FUZZPARALLEL=${FUZZPARALLEL:-$(nproc)}
FUZZ_MATCH=${FUZZ_MATCH:-}

# package directory and target name, one pair a line, sorted.
targets=$(grep -rEo --include='*_test.go' --exclude-dir=.git --exclude-dir=vendor \
	'^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . |
	sed -E 's|^\./(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*|\1 \2|' | sort -u)
if [ -n "$FUZZ_MATCH" ]; then
	targets=$(grep -E -- "$FUZZ_MATCH" <<<"$targets" || true)
fi
if [ -z "$targets" ]; then
	echo "fuzz: no fuzz targets${FUZZ_MATCH:+ matching $FUZZ_MATCH}" >&2
	exit 1
fi
count=$(wc -l <<<"$targets")
echo "fuzz: $count targets, $FUZZTIME each:"
sed 's/^/  /' <<<"$targets"

# seconds turns a Go duration as the fuzzer prints it (3s, 1m0s, 1h2m3s) into seconds.
seconds() {
	local d=$1 total=0 n
	for unit in h m s; do
		if [[ $d =~ ^([0-9]+)$unit(.*)$ ]]; then
			n=${BASH_REMATCH[1]}
			d=${BASH_REMATCH[2]}
			case $unit in h) total=$((total + n * 3600)) ;; m) total=$((total + n * 60)) ;; s) total=$((total + n)) ;; esac
		fi
	done
	echo "$total"
}

# runtarget DIR NAME BIN PKG LOG fuzzes one target, its output in LOG; returns its exit code.
runtarget() {
	(cd "$1" && "$3" -test.run '^$' -test.fuzz "^$2\$" -test.fuzztime "$FUZZTIME" \
		-test.fuzzminimizetime "$FUZZMINIMIZETIME" -test.parallel "$FUZZPARALLEL" \
		-test.fuzzcachedir "$cache/$4") >"$5" 2>&1
}

# inputs DIR NAME counts the committed inputs of a target (a crash adds one).
inputs() {
	{ find "$1/testdata/fuzz/$2" -type f 2>/dev/null || true; } | wc -l
}

bindir=$(mktemp -d)
trap 'rm -rf "$bindir"' EXIT
cache=$($GO env GOCACHE)/fuzz
failed=()
summary=()
built=""
start=$SECONDS
while read -r dir name; do
	bin="$bindir/${dir//\//_}.test"
	if [[ " $built " != *" $dir "* ]]; then
		echo "fuzz: building ./$dir"
		if ! $GO test -c -fuzz . -o "$bin" "./$dir"; then
			failed+=("./$dir (build)")
			continue
		fi
		built="$built $dir"
	fi
	[ -x "$bin" ] || continue
	pkg=$($GO list "./$dir")
	log="$bindir/$name.log"
	echo "== ./$dir $name"
	seeds=$(inputs "$dir" "$name")
	rc=0
	runtarget "$dir" "$name" "$bin" "$pkg" "$log" || rc=$?
	# Go 1.26's fuzz coordinator can stop with "context deadline exceeded" at the end of its
	# time with no failing input (golang/go#75804): nothing was found, so run the target again
	# once. A real crash always writes its input to testdata/fuzz/<Target>/.
	if [ $rc -ne 0 ] && grep -q 'context deadline exceeded' "$log" &&
		[ "$(inputs "$dir" "$name")" -eq "$seeds" ]; then
		echo "fuzz: $name stopped with the coordinator's deadline error and no input; running it again"
		rc=0
		runtarget "$dir" "$name" "$bin" "$pkg" "$log" || rc=$?
	fi
	last=$(grep -E '^fuzz: elapsed: .*execs: ' "$log" | tail -n 1 || true)
	execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
	secs=$(seconds "$(sed -nE 's/^fuzz: elapsed: ([0-9hms]+),.*/\1/p' <<<"$last")")
	new=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
	rate=$((${execs:-0} / (secs > 0 ? secs : 1)))
	if [ $rc -eq 0 ]; then
		result=PASS
	else
		result=FAIL
		failed+=("./$dir $name")
		grep -vE '^fuzz: elapsed' "$log" | tail -n 25
	fi
	line=$(printf '%-22s %-26s %9s execs %7s/s %5s new  %s' "./$dir" "$name" "${execs:-0}" "$rate" "${new:-0}" "$result")
	echo "$line"
	summary+=("$line")
done <<<"$targets"

echo
echo "fuzz: summary ($FUZZTIME each, $((SECONDS - start))s in all)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: FAILED: ${failed[*]}" >&2
	exit 1
fi
