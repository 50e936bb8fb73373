#!/bin/bash
# The demo (`make demo`): the pipeline of examples/hello end to end on this machine, daemonless.
#  1. a real registry on 127.0.0.1 (Debian's docker-registry);
#  2. the base images, built by the executor itself as build pods (scripts/pod.sh): busybox
#     (FROM scratch + Debian's busybox-static) and a Go toolchain image (busybox + this machine's
#     GOROOT), since no public registry is reachable here;
#  3. `bin/pipeline run` on examples/hello: the build stage tests and compiles the app in the Go
#     image (unpacked into a directory, chrooted, own namespaces), the image stage builds and
#     pushes hello:1 with the layer cache; then build 2, which takes every layer from the cache;
#  4. the pushed image is pulled (skopeo), unpacked (umoci) and run in a sandbox, and the demo
#     prints what it answers over HTTP.
# With KUBECONFIG set, the deploy stage applies examples/hello/k8s to that cluster too.
set -euo pipefail
cd "$(dirname "$0")/.."
exe=$PWD/bin/executor
pipe=$PWD/bin/pipeline
work=$(mktemp -d /tmp/kiln-demo.XXXXXX)
regpid="" apppid=""
cleanup() {
  # The app runs as pid 1 of its own pid namespace, under another uid: kill its whole
  # process group (setsid below made apppid its leader), which ends the namespace.
  [ -n "$apppid" ] && kill -KILL -- "-$apppid" 2>/dev/null
  [ -n "$regpid" ] && kill "$regpid" 2>/dev/null
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

port=$(freeport)
reg=127.0.0.1:$port
cat > "$work/registry.yml" <<EOC
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}, delete: {enabled: true}}
http: {addr: $reg}
EOC
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 & regpid=$!
for i in $(seq 100); do curl -sf "http://$reg/v2/" >/dev/null && break; sleep 0.1; done
echo "== registry on $reg"

echo "== base image: busybox (FROM scratch, ADD rootfs.tar.gz), built by the executor in a pod"
base=$work/base; mkdir -p "$base/rootfs/bin" "$base/rootfs/etc" "$base/rootfs/tmp" "$base/rootfs/root" "$base/rootfs/home"
cp /bin/busybox "$base/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$base/rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' > "$base/rootfs/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' > "$base/rootfs/etc/group"
chmod 1777 "$base/rootfs/tmp"
tar --numeric-owner -C "$base/rootfs" -czf "$base/rootfs.tar.gz" . && rm -rf "$base/rootfs"
printf 'FROM scratch\nADD rootfs.tar.gz /\nCMD ["/bin/sh"]\n' > "$base/Dockerfile"
scripts/pod.sh "$exe" "$base" --context dir:///workspace --dockerfile Dockerfile \
  --destination "$reg/demo/busybox:latest" --log-format text 2>&1 | tail -3

echo "== stage image: Go $(go env GOVERSION) on busybox, built by the executor in a pod"
gocontext=$work/golang; mkdir -p "$gocontext"
cp -al "$(go env GOROOT)" "$gocontext/go" 2>/dev/null || cp -a "$(go env GOROOT)" "$gocontext/go"
cat > "$gocontext/Dockerfile" <<'EOD'
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY go /usr/local/go
ENV PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin GOTOOLCHAIN=local
EOD
scripts/pod.sh "$exe" "$gocontext" --context dir:///workspace --dockerfile Dockerfile \
  --build-arg "BASE_IMAGE=$reg/demo/busybox:latest" --destination "$reg/demo/golang:local" \
  --log-format text 2>&1 | tail -3

app=$work/hello
cp -a examples/hello "$app"
stages=build,image
[ -n "${KUBECONFIG:-}" ] && stages=build,image,deploy
vars=(--var "REGISTRY=$reg/demo" --var "GO_IMAGE=$reg/demo/golang:local" --var "BASE_IMAGE=$reg/demo/busybox:latest")
for n in 1 2; do
  echo "== bin/pipeline run -f examples/hello/kiln-pipeline.yaml --build-number $n --stage $stages"
  "$pipe" run -f "$app/kiln-pipeline.yaml" --build-number "$n" --stage "$stages" "${vars[@]}"
done

echo "== running $reg/demo/hello:2 (skopeo copy -> umoci unpack -> sandbox) and asking it over HTTP"
skopeo copy -q --src-tls-verify=false "docker://$reg/demo/hello:2" "oci:$work/oci:hello" >/dev/null
umoci unpack --image "$work/oci:hello" "$work/bundle" >/dev/null
appport=$(freeport)
# The entrypoint as the image says: its user, working dir and environment (umoci's config.json).
setsid python3 - "$work/bundle" "$appport" > "$work/app.log" 2>&1 <<'EOP' & apppid=$!
import json, os, sys
bundle, port = sys.argv[1], sys.argv[2]
proc = json.load(open(os.path.join(bundle, "config.json")))["process"]
user = "%d:%d" % (proc["user"]["uid"], proc["user"]["gid"])
env = proc["env"] + ["PORT=" + port]
os.execvp("unshare", ["unshare", "-p", "-f", "--kill-child", "chroot", "--userspec=" + user,
          os.path.join(bundle, "rootfs"), "env", "-i"] + env +
          ["sh", "-c", 'cd "$0" && exec "$@"', proc["cwd"]] + proc["args"])
EOP
disown "$apppid"   # killed at exit; no job-control message then
for i in $(seq 100); do curl -sf "http://127.0.0.1:$appport/healthz" >/dev/null && break; sleep 0.1; done
echo "GET http://127.0.0.1:$appport/ -> $(curl -sf "http://127.0.0.1:$appport/")"
