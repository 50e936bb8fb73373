package registry

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// retryable decides which failed requests --push-retry and --image-download-retry try again:
// what go-containerregistry retries by default (temporary network errors, a connection reset
// or cut short) and also a registry that cannot be reached for a moment: connection refused
// (a registry restarting after a crash or an upgrade), no route, timeouts. A cancelled build
// is never retried. Answers with an HTTP status are retried by status (retryStatusCodes).
func retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	for _, e := range []error{io.ErrUnexpectedEOF, io.EOF, net.ErrClosed,
		syscall.EPIPE, syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.ECONNABORTED,
		syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ETIMEDOUT} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && (dnsErr.IsTemporary || dnsErr.IsTimeout) {
		return true
	}
	var temp interface{ Temporary() bool }
	return errors.As(err, &temp) && temp.Temporary()
}

// Transient reports whether err is a failure that retrying may cure: a network failure that
// retryable accepts, or a registry answer with a status retried by status (5xx, 408, 429).
// The executor uses it to suggest --push-retry.
func Transient(err error) bool {
	if retryable(err) {
		return true
	}
	var te *transport.Error
	if errors.As(err, &te) {
		for _, code := range retryStatusCodes() {
			if te.StatusCode == code {
				return true
			}
		}
	}
	return false
}
