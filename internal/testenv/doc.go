// Package testenv starts the real services that Kiln's integration tests run
// against and reads their results independently of Kiln's own code.
//
// Everything runs on this machine as root, bound to 127.0.0.1 on free ports,
// with its state under t.TempDir() (or /var/tmp/kiln-test for slow, shareable
// caches) and is torn down through the testing.TB it was given:
//
//   - StartRegistry runs Debian's docker-registry (plain, htpasswd, TLS; on
//     another address than 127.0.0.1 with RegistryOptions.Host, for pods).
//   - PushBusybox, PushDebian and PushImageFromDir make base images in-process;
//     PushGoToolchain a Go toolchain image from this machine's GOROOT.
//   - RunPod runs a binary the way a Kaniko build pod does: a throwaway root,
//     its own mount and pid namespaces, the context at /workspace.
//   - ExportImage, Config, SkopeoInspect and UmociUnpack read pushed images.
//   - For the fault tests: MountSmallFS (a size-limited tmpfs to fill), NewCgroup
//     (memory and pids limits a Pod runs under), Registry.Kill and Restart (same
//     port and storage), Registry.BlobPath (to damage a stored blob), and Secrets
//     (search logs, images, repositories and trees for planted values).
//
// Helpers skip the test (saying which tool or capability is missing) only when
// the machine cannot run them; every other problem fails the test.
package testenv
