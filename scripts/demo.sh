#!/bin/bash
# The demo: a real registry on 127.0.0.1, a busybox base image built by the executor itself
# (FROM scratch + ADD of a rootfs made from Debian's busybox-static), then examples/demo built as
# a build pod would build it, pushed, inspected with skopeo, unpacked with umoci and run.
set -euo pipefail
cd "$(dirname "$0")/.."
exe=$PWD/bin/executor
work=$(mktemp -d /tmp/kiln-demo.XXXXXX)
regpid=""
cleanup() { [ -n "$regpid" ] && kill "$regpid" 2>/dev/null; rm -rf --one-file-system "$work"; }
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
cat > "$work/registry.yml" <<EOC
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: $reg}
EOC
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 & regpid=$!
for i in $(seq 100); do curl -sf "http://$reg/v2/" >/dev/null && break; sleep 0.1; done
echo "== registry on $reg"

echo "== building the busybox base image (FROM scratch, ADD rootfs.tar.gz)"
base=$work/base; mkdir -p "$base/rootfs/bin" "$base/rootfs/etc" "$base/rootfs/tmp" "$base/rootfs/root" "$base/rootfs/home"
cp /bin/busybox "$base/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$base/rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' > "$base/rootfs/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' > "$base/rootfs/etc/group"
chmod 1777 "$base/rootfs/tmp"
tar --numeric-owner -C "$base/rootfs" -czf "$base/rootfs.tar.gz" . && rm -rf "$base/rootfs"
printf 'FROM scratch\nADD rootfs.tar.gz /\nENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nCMD ["/bin/sh"]\n' > "$base/Dockerfile"
scripts/pod.sh "$exe" "$base" --context dir:///workspace --dockerfile Dockerfile \
  --destination "$reg/demo/busybox:latest" --insecure --log-format text

echo "== building examples/demo as a build pod would"
scripts/pod.sh "$exe" "$PWD/examples/demo" --context dir:///workspace --dockerfile Dockerfile \
  --build-arg "BASE=$reg/demo/busybox:latest" --destination "$reg/demo/app:1.0.0" \
  --insecure --insecure-pull --log-format text --digest-file /kaniko/digest

echo "== skopeo inspect docker://$reg/demo/app:1.0.0"
skopeo inspect --tls-verify=false "docker://$reg/demo/app:1.0.0" | head -40
echo "== running the pushed image (skopeo copy -> umoci unpack -> chroot)"
skopeo copy -q --src-tls-verify=false "docker://$reg/demo/app:1.0.0" "oci:$work/oci:app" >/dev/null
umoci unpack --image "$work/oci:app" "$work/bundle" >/dev/null
# run the entrypoint as the image says: its user, working dir and environment (umoci's config.json)
python3 - "$work/bundle" <<'EOP'
import json, os, subprocess, sys
bundle = sys.argv[1]
proc = json.load(open(os.path.join(bundle, "config.json")))["process"]
user = "%d:%d" % (proc["user"]["uid"], proc["user"]["gid"])
cmd = ["unshare", "-p", "-f", "chroot", "--userspec=" + user, os.path.join(bundle, "rootfs"),
       "env", "-i"] + proc["env"] + ["sh", "-c", 'cd "$0" && exec "$@"', proc["cwd"]] + proc["args"]
sys.exit(subprocess.call(cmd))
EOP
