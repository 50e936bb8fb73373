#!/usr/bin/env bash
# Traces ext4 inode allocations while COMMAND runs (perf's ext4 tracepoints, system-wide) and
# prints, for each process that allocated 3,000 inodes or more, the time it spent allocating
# and the flex groups (16 block groups of 8,192 inodes here) that took longest, with how many
# inodes the trace saw freed there in the six minutes before: the recently_deleted cost that
# internal/dirspread avoids. Only frees during the trace are seen, so wrap a whole run.
#
#   scripts/alloc-trace.sh python3 ../shared/bench/run.py bin/executor warm -n 3
set -euo pipefail
data=$(mktemp /tmp/alloc-trace.XXXX)
trap 'rm -f "$data" "$data.txt"' EXIT
perf record -q -e ext4:ext4_request_inode -e ext4:ext4_allocate_inode -e ext4:ext4_free_inode -a -o "$data" -- "$@"
perf script -i "$data" -F comm,pid,tid,time,event,trace 2>/dev/null >"$data.txt"
python3 - "$data.txt" <<'PY'
import collections, re, sys
INODES_PER_FLEX = 8192 * 16
req, frees, byproc = {}, collections.defaultdict(list), collections.defaultdict(list)
for line in open(sys.argv[1]):
    m = re.match(r'\s*(\S+)\s+(\d+)/(\d+)\s+([\d.]+):\s+ext4:(\w+): dev \S+ (.*)', line)
    if not m:
        continue
    comm, pid, tid, t, ev, rest = m.groups()
    t = float(t)
    if ev == 'ext4_request_inode':
        req[tid] = t
    elif ev == 'ext4_allocate_inode':
        ino = int(re.search(r'ino (\d+)', rest).group(1))
        byproc[(pid, comm)].append((t, ino, t - req.pop(tid, t)))
    elif ev == 'ext4_free_inode':
        frees[(int(re.search(r'ino (\d+)', rest).group(1)) - 1) // INODES_PER_FLEX].append(t)
for (pid, comm), allocs in sorted(byproc.items(), key=lambda kv: kv[1][0][0]):
    if len(allocs) < 3000:
        continue
    t0 = allocs[0][0]
    flex = collections.defaultdict(lambda: [0, 0.0])
    for _, ino, lat in allocs:
        f = flex[(ino - 1) // INODES_PER_FLEX]
        f[0] += 1
        f[1] += lat
    worst = sorted(flex.items(), key=lambda kv: -kv[1][1])[:3]
    print(f"{comm} {pid}: {len(allocs)} inodes, {sum(a[2] for a in allocs):.2f} s allocating, {len(flex)} flex groups; " +
          "; ".join(f"flex {g}: {n} inodes {lat:.2f} s ({sum(1 for ft in frees[g] if t0 - 360 < ft < t0)} freed there earlier in the trace, within 6 min)"
                    for g, (n, lat) in worst))
PY
