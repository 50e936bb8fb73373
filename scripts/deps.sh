#!/bin/bash
# Installs what the tests and the demo need on a fresh Debian machine (as root, idempotent):
# Debian's docker-registry (the real registry the tests start), busybox-static (base images),
# debootstrap (a Debian base where a test needs apt or bash), skopeo and umoci (independent
# readers of what we build), util-linux (unshare, for the pod sandbox), git (the tests' git
# server), curl and python3 (the demo script); for internal/testenv/kube: etcd-server (the API
# server's store), containerd and runc (the node's runtime), containernetworking-plugins (pod
# network: bridge, host-local, loopback), iptables, nftables, conntrack and iproute2 (kube-proxy,
# CNI, the bridge's removal).
set -euo pipefail
pkgs="docker-registry busybox-static debootstrap skopeo umoci util-linux ca-certificates git curl python3"
pkgs="$pkgs etcd-server containerd runc containernetworking-plugins iptables nftables conntrack iproute2"
need=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"; done
if [ -n "$need" ]; then
  echo "installing:$need"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi
