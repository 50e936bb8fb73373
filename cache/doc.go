// Package cache decides cache keys for Dockerfile instructions and stores the layers they made.
//
// A Key is a sha256 over the key of the previous instruction (its parent) and a list of named
// Inputs (the instruction text after expansion, the build args and env it sees, and for COPY/ADD
// every source file's path, mode, owner and content digest). Because the inputs are kept by name
// in each stored Entry, a miss can be explained by comparing them with the previous entry for the
// same position in the Dockerfile (its lineage): "app/code.bin changed".
//
// A Store keeps one single-layer image per key: NewRegistryStore in a registry repository (the
// key is the tag), NewLayoutStore in an OCI image layout directory. An instruction whose snapshot
// was empty is stored as an image with no layer, so a hit on it needs no download. BaseCache keeps
// the compressed layers of base images on local disk, by digest.
package cache
