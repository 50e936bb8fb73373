package integration

import (
	"testing"

	"github.com/kilnbuild/kiln/internal/testenv/kube"
)

// TestMain runs the package's tests, then stops the API server kube.Shared started (the
// pipeline tests deploy to it, each in a namespace of its own).
func TestMain(m *testing.M) { kube.Main(m) }
