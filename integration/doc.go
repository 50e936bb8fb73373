// Package integration holds end-to-end tests: the executor binary run as a build pod against a
// real registry (Debian's docker-registry), and the library building into a directory root.
// The tests need root (namespaces, chroot, mounts); internal/testenv provides the services.
package integration
