// Package registry talks to container registries and writes image outputs.
//
// It is a thin, state-free layer over go-containerregistry: Pull resolves a
// reference (honouring mirrors, registry maps, insecure and TLS settings) to a
// lazily fetched v1.Image; Push writes an image to one or more tags; and the
// Write* functions produce the files Kaniko users rely on: a docker-archive
// tarball, an OCI image layout and the digest files. Every call takes its
// settings as functional options, so two builds in one process never share
// anything but the connection pool of the default transport.
package registry
