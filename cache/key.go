package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strings"
)

// Key identifies the result of one instruction: 64 lowercase hex characters, usable as a tag.
type Key string

// Short is the key's first 12 characters, for logs.
func (k Key) Short() string {
	if len(k) > 12 {
		return string(k[:12])
	}
	return string(k)
}

// Input is one named thing an instruction's result depends on. Value is what is hashed: a
// digest, or a short text (kept as is so an explanation can show it).
type Input struct {
	Name  string `json:"n"`
	Value string `json:"v"`
}

// Names of the inputs NewKey callers use; files are named FilePrefix + their path.
const (
	InputInstruction = "instruction" // the instruction after ARG/ENV expansion
	InputArgs        = "args"        // the build args it sees
	InputEnv         = "env"         // the env it sees
	InputConfig      = "config"      // WORKDIR, USER and SHELL in effect
	InputBuild       = "build"       // options that change layer bytes (compression, reproducible)
	InputFrom        = "from"        // the image or stage a COPY --from reads
	InputFiles       = "files"       // all source files together (stored when there are too many)
	FilePrefix       = "file:"       // one source file: mode, owner, content digest
)

// NewKey hashes parent and the inputs, in order, into the key of an instruction. The encoding
// is unambiguous (each field is length-prefixed by JSON quoting).
func NewKey(parent Key, inputs ...Input) Key {
	h := sha256.New()
	enc := json.NewEncoder(h)
	_ = enc.Encode(string(parent)) // a hash.Hash never fails to write
	for _, in := range inputs {
		_ = enc.Encode(in)
	}
	return Key(hex.EncodeToString(h.Sum(nil)))
}

// Text is an input whose value is a short text, such as the instruction itself.
func Text(name, value string) Input { return Input{Name: name, Value: value} }

// Digest is an input whose value is the sha256 of data (for long values such as an env list).
func Digest(name string, data []byte) Input {
	sum := sha256.Sum256(data)
	return Input{Name: name, Value: "sha256:" + hex.EncodeToString(sum[:])}
}

// Map is an input over a set of KEY=VALUE pairs, sorted so their order does not matter.
func Map(name string, m map[string]string) Input {
	pairs := make([]string, 0, len(m))
	for k, v := range m {
		pairs = append(pairs, k+"="+v)
	}
	sort.Strings(pairs)
	return List(name, pairs)
}

// List is an input over an ordered list of strings (an env, where order decides shadowing).
func List(name string, items []string) Input {
	b, _ := json.Marshal(items)
	if len(b) <= 200 {
		return Input{Name: name, Value: string(b)}
	}
	return Digest(name, b)
}

// isFile reports whether an input names a source file.
func (in Input) isFile() bool { return strings.HasPrefix(in.Name, FilePrefix) }
