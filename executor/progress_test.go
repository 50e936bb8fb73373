package executor

import (
	"bytes"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestLogPushProgressEndsWithTotal(t *testing.T) {
	var buf bytes.Buffer
	log, err := NewLogger(&buf, "text", "debug", false)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan v1.Update, 4)
	ch <- v1.Update{Complete: 1 << 20, Total: 3 << 20}
	ch <- v1.Update{Complete: 3 << 20, Total: 3 << 20}
	close(ch)
	logPushProgress(log, "reg/app:1", ch)
	if !strings.Contains(buf.String(), "Pushed reg/app:1: 3.0 MiB") {
		t.Fatalf("log = %q", buf.String())
	}
}
