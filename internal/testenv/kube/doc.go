// Package kube runs real Kubernetes for tests, from the binaries of
// integration/k8stools/build.sh:
//
//   - StartAPIServer (or Shared, one per test binary): Debian's etcd and
//     kube-apiserver on 127.0.0.1, client-certificate admin, RBAC, TokenRequest.
//   - StartCluster (or SharedCluster): a one-node cluster on this machine:
//     the API server on the node address, kube-controller-manager,
//     kube-scheduler, and a node of containerd, runc, the kubelet and
//     kube-proxy (nftables), with a bridge pod network, a locally built pause
//     image, plain-HTTP pulls from test registries on the node address.
//
// The binaries come from $KILN_K8S_BIN (make test sets it), else from
// build.sh's cache directory, running build.sh when one is missing (about 20
// minutes the first time; test processes take turns through a lock).
//
// An API server alone runs no controllers: objects are stored and served,
// RBAC and admission apply, TokenRequest works, but nothing acts on them (a
// Deployment gets no ReplicaSet, a deleted namespace stays Terminating, no
// "default" service account appears). A cluster runs them all.
//
// Every process is started in a process group of its own, recorded and
// stopped at the test's cleanup (Shared's at the end of Main); state lives in
// the test's temporary directories. The node's daemons share a private mount
// namespace, so their mounts never reach the host, and a cgroup root of their
// own, where teardown finds every process (shims and containers included);
// teardown also removes the bridge and kube-proxy's tables and puts back the
// kernel settings the kubelet and the bridge plugin changed. One cluster runs
// on the machine at a time; a cluster whose test was killed is cleaned up by
// the next one. A test is skipped, saying why, only when the machine cannot
// run the pieces (not root, etcd or containerd not installed, binaries cannot
// be built, no cgroups); every other problem fails it.
package kube
