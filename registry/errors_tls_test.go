package registry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// TestReasonPrefersTLSOverPlainHTTPFallback covers go-containerregistry's HTTPS-then-HTTP
// ping for loopback registries: when HTTPS failed on a certificate or a TLS alert, the TLS
// server's 400 to the HTTP retry must not hide it; when the server speaks plain HTTP, its
// HTTP answer is the real one.
func TestReasonPrefersTLSOverPlainHTTPFallback(t *testing.T) {
	badRequest := &transport.Error{StatusCode: 400}
	for _, tc := range []struct {
		err          error
		reason, desc string
	}{
		{errors.Join(x509.UnknownAuthorityError{}, badRequest), "TLS", "unknown authority"},
		{errors.Join(&net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}, badRequest), "TLS", "certificate required"},
		{errors.Join(tls.RecordHeaderError{Msg: "http response"}, &transport.Error{StatusCode: 500}), "HTTP 500", "HTTP 500"},
		{tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, "TLS", "TLS handshake"},
		{&net.OpError{Op: "dial", Err: errors.New("boom")}, "error", "boom"},
	} {
		if got := reason(tc.err); got != tc.reason {
			t.Errorf("reason(%v) = %q, want %q", tc.err, got, tc.reason)
		}
		if got := describe(tc.err); !strings.Contains(got, tc.desc) {
			t.Errorf("describe(%v) = %q, want it to contain %q", tc.err, got, tc.desc)
		}
	}
}
