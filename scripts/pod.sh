#!/bin/bash
# usage: pod.sh EXECUTOR CONTEXT_DIR [executor args...]
# Runs the executor the way a build pod does, so it can never touch this machine's /: a
# throwaway root directory with its own mount and pid namespaces, /proc /dev /sys provided,
# the context bind-mounted at /workspace, /etc/hosts and /etc/resolv.conf bind-mounted, the
# binary at /kaniko/executor and the Kaniko image's environment. The root is removed afterwards.
set -euo pipefail
exe=$1; ctx=$2; shift 2
root=$(mktemp -d /tmp/kiln-pod.XXXXXX)
trap 'rm -rf --one-file-system "$root"' EXIT
mkdir -p "$root"/{kaniko/ssl/certs,kaniko/.docker,workspace,proc,dev,sys,etc,tmp}
cp "$exe" "$root/kaniko/executor"
touch "$root/etc/hosts" "$root/etc/resolv.conf"
[ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$root/kaniko/ssl/certs/"
[ -n "${POD_DOCKER_CONFIG:-}" ] && cp "$POD_DOCKER_CONFIG" "$root/kaniko/.docker/config.json"
args=$(printf '%q ' "$@")
unshare -m -p -f --mount-proc="$root/proc" bash -c "
  mount --make-rprivate /
  mount --rbind /dev '$root/dev'
  mount -t sysfs sys '$root/sys'
  mount --bind '$ctx' '$root/workspace'
  mount --bind /etc/hosts '$root/etc/hosts'
  mount --bind /etc/resolv.conf '$root/etc/resolv.conf'
  exec env -i PATH=/usr/local/bin:/kaniko HOME=/root USER=root SSL_CERT_DIR=/kaniko/ssl/certs \
    DOCKER_CONFIG=/kaniko/.docker/ /usr/sbin/chroot '$root' /kaniko/executor --force $args"
