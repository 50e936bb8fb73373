package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// FuzzErrorBody turns arbitrary registry answers (status and body) into the errors the user
// reads, alone, annotated as a mirror's, and joined with another: nothing may panic; the
// message names the operation and the reference, stays on the scale of the body (the body is
// read up to 64 KiB), never shows the credentials of the request URL, and quotes every error
// code a well-formed body carries; reason always has a word for it.
func FuzzErrorBody(f *testing.F) {
	for _, s := range []struct {
		status int
		body   string
	}{
		{404, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"1"}}]}`},
		{401, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository","Name":"app","Action":"push"}]}]}`},
		{403, `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`},
		{400, `{"errors":[{"code":"TAG_INVALID","message":"The repository has enabled tag immutability"},{"code":"X","message":""}]}`},
		{500, `<html>Internal Server Error</html>`},
		{429, `{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit"}]}`},
		{502, ``},
		{404, `{"errors":null}`},
		{404, `{"errors":[{}]}`},
		{418, `{"errors":[{"code":"\u0000\n\u001b[31m","message":"line one\nline two"}]}`},
		{0, `{"errors":"x"}`},
		{-1, `[`},
	} {
		f.Add(s.status, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		req := &http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "https", Host: "reg.example",
			User: url.UserPassword("fuzzuser", "fuzzpass1234"), Path: "/v2/app/manifests/1"}}
		resp := &http.Response{StatusCode: status, Body: io.NopCloser(bytes.NewReader(body)), Request: req}
		err := transport.CheckError(resp, http.StatusOK)
		if status == http.StatusOK {
			if err != nil {
				t.Fatalf("200: %v", err)
			}
			return
		}
		if err == nil {
			t.Fatalf("status %d: no error", status)
		}
		for _, e := range []*Error{
			{Op: "pull", Ref: "reg.example/app:1", Err: err},
			{Op: "pull", Ref: "reg.example/app:1", Err: annotate(errors.Join(annotate(err, "mirror %s", "m.example"), io.EOF), "all mirrors")},
		} {
			msg := e.Error()
			if !strings.HasPrefix(msg, "pull reg.example/app:1: ") {
				t.Errorf("message %q does not name the operation and reference", msg)
			}
			if len(msg) > 256+2*min(len(body), 64<<10) {
				t.Errorf("a %d-byte body gave a %d-byte message", len(body), len(msg))
			}
			if strings.Contains(msg, "fuzzpass1234") {
				t.Errorf("message %q shows the password", msg)
			}
			if reason(e) == "" {
				t.Errorf("no reason for %q", msg)
			}
			isImmutableTagError(e)
		}
		var parsed struct {
			Errors []struct{ Code string } `json:"errors"`
		}
		if len(body) < 64<<10 && json.Unmarshal(body, &parsed) == nil {
			msg := (&Error{Op: "push", Ref: "r", Err: err}).Error()
			for _, d := range parsed.Errors {
				if !strings.Contains(msg, d.Code) {
					t.Errorf("message %q leaves out the code %q", msg, d.Code)
				}
			}
		}
	})
}

// FuzzURLError renders failed requests to URLs a registry chose (an upload's Location): no
// panic, and the message shows neither the URL's password nor its query (signed storage URLs
// and upload state carry secrets there).
func FuzzURLError(f *testing.F) {
	for _, u := range []string{
		"https://reg.example/v2/app/blobs/uploads/abc?_state=s3cr3tstate&digest=sha256:1234",
		"https://user:p4ssw0rd@reg.example/v2/app/manifests/1",
		"https://bucket.s3.amazonaws.com/blob?X-Amz-Signature=deadbeefcafe&X-Amz-Credential=AKIAxx",
		"http://[::1]:5000/v2/?", "%zz", "://", "", "https://reg.example/v2/#frag?x=secretfrag",
	} {
		f.Add("Put", u)
	}
	f.Fuzz(func(t *testing.T, op, raw string) {
		err := &url.Error{Op: op, URL: raw, Err: io.ErrUnexpectedEOF}
		msg := (&Error{Op: "push", Ref: "reg.example/app:1", Err: err}).Error()
		u, perr := url.Parse(raw)
		if perr != nil {
			return
		}
		secrets := []string{}
		if p, ok := u.User.Password(); ok {
			secrets = append(secrets, p)
		}
		for k, vs := range u.Query() {
			if k != "digest" {
				secrets = append(secrets, vs...)
			}
		}
		for _, s := range secrets {
			if len(s) >= 6 && strings.Contains(msg, s) && !strings.Contains(op+u.Host+u.Path+u.Fragment+"push reg.example/app:1: ", s) {
				t.Errorf("message %q shows %q from the URL", msg, s)
			}
		}
	})
}
