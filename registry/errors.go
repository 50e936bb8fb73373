package registry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// errDigestDestination rejects "repo@sha256:..." as a push destination.
var errDigestDestination = errors.New("destination is a digest; push needs a tag (repo[:tag])")

// Error is a failed registry operation on one reference. Its message names
// the operation, the reference and the registry's answer, e.g.
// "pull localhost:5000/nope:1: MANIFEST_UNKNOWN: manifest unknown".
type Error struct {
	Op  string // "pull", "push" or "check push access"
	Ref string // the reference as the user wrote it
	Err error  // the underlying error; a *transport.Error when the registry answered
}

// Error implements error.
func (e *Error) Error() string { return e.Op + " " + e.Ref + ": " + describe(e.Err) }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// annotated is an error whose message is already written for users; describe
// prints it as is, while errors.As still reaches the cause.
type annotated struct {
	msg string
	err error
}

func (a *annotated) Error() string { return a.msg }
func (a *annotated) Unwrap() error { return a.err }

// annotate prefixes the description of err with a formatted context.
func annotate(err error, format string, args ...any) error {
	return &annotated{msg: fmt.Sprintf(format, args...) + ": " + describe(err), err: err}
}

// describe renders err as the registry's answer when there is one, without
// repeating the request URL that transport.Error puts in front.
func describe(err error) string {
	if a, ok := err.(*annotated); ok {
		return a.msg
	}
	if je, ok := err.(interface{ Unwrap() []error }); ok {
		var parts []string
		for _, e := range je.Unwrap() {
			parts = append(parts, describe(e))
		}
		return strings.Join(parts, "; ")
	}
	if c := tlsCause(err); c != nil {
		return c.Error() // not the HTTP fallback's answer (see reason)
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Error() == err.Error() {
		return describeURLError(ue)
	}
	var te *transport.Error
	if errors.As(err, &te) {
		if len(te.Errors) == 0 {
			return fmt.Sprintf("HTTP %d %s", te.StatusCode, http.StatusText(te.StatusCode))
		}
		parts := make([]string, 0, len(te.Errors))
		for _, d := range te.Errors {
			parts = append(parts, string(d.Code)+": "+d.Message)
		}
		return strings.Join(parts, "; ")
	}
	return err.Error()
}

// describeURLError renders a failed HTTP request as "Op URL: cause" with the URL's query
// (upload state tokens, signed storage URLs) and user info left out, the blob named when the
// query gave its digest, and the cause in a network's words ("connection reset by peer").
func describeURLError(ue *url.Error) string {
	target := ue.URL
	var digest string
	if u, err := url.Parse(ue.URL); err == nil {
		digest = u.Query().Get("digest")
		u.RawQuery, u.ForceQuery, u.User, u.Fragment = "", false, nil, ""
		target = u.String()
	} else {
		target = "(unparsable URL)"
	}
	msg := ue.Op + " " + target
	if digest != "" {
		msg += " (blob " + digest + ")"
	}
	return msg + ": " + networkCause(ue.Err)
}

// networkCause names a transport failure the way a user searches for it.
func networkCause(err error) string {
	for _, e := range []error{syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.EPIPE, syscall.ECONNABORTED,
		syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ETIMEDOUT} {
		if errors.Is(err, e) {
			var op *net.OpError
			if errors.As(err, &op) && op.Op == "dial" && op.Addr != nil {
				return "dial " + op.Addr.String() + ": " + e.Error()
			}
			return e.Error()
		}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the registry closed the connection before answering (" + err.Error() + ")"
	}
	if c := tlsCause(err); c != nil {
		return c.Error()
	}
	return err.Error()
}

// reason classifies why access to a registry failed, in the words a user
// searches for: unauthorized, denied, not found, TLS, connection refused.
func reason(err error) string {
	// First: for loopback and private hosts go-containerregistry falls back to
	// plain HTTP when HTTPS fails, and the TLS server's "400 Bad Request" to
	// that fallback would hide the real cause.
	if tlsCause(err) != nil {
		return "TLS"
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch {
		case te.StatusCode == http.StatusUnauthorized || hasCode(te, transport.UnauthorizedErrorCode):
			return "unauthorized"
		case te.StatusCode == http.StatusForbidden || hasCode(te, transport.DeniedErrorCode):
			return "denied"
		case te.StatusCode == http.StatusNotFound || hasCode(te, transport.NameUnknownErrorCode):
			return "not found"
		}
		return fmt.Sprintf("HTTP %d", te.StatusCode)
	}
	var recordErr tls.RecordHeaderError // a plain-HTTP server answered HTTPS
	switch {
	case errors.As(err, &recordErr):
		return "TLS"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	}
	return "error"
}

// tlsCause returns the certificate or TLS alert error within err, if any: a
// TLS server refused us, so its answer to a plain-HTTP retry is noise. A
// RecordHeaderError is not one (the server speaks plain HTTP).
func tlsCause(err error) error {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verifyErr *tls.CertificateVerificationError
		opErr     *net.OpError
	)
	switch {
	case errors.As(err, &verifyErr):
		return verifyErr
	case errors.As(err, &unknownCA):
		return unknownCA
	case errors.As(err, &hostname):
		return hostname
	case errors.As(err, &invalid):
		return invalid
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		return opErr // a TLS alert from the server, e.g. "tls: certificate required"
	}
	return nil
}

func hasCode(te *transport.Error, code transport.ErrorCode) bool {
	for _, d := range te.Errors {
		if d.Code == code {
			return true
		}
	}
	return false
}

// immutableTagMessages are the registries' words for "this tag cannot be
// overwritten" (Artifact Registry, ECR), as Kaniko recognises them.
var immutableTagMessages = []string{
	"The repository has enabled tag immutability",
	"cannot be overwritten because the repository is immutable",
}

func isImmutableTagError(err error) bool {
	msg := err.Error()
	for _, m := range immutableTagMessages {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}
