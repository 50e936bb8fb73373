package registry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCheckPushAccess(t *testing.T) {
	reg := newTestRegistry(t)
	if err := CheckPushAccess(context.Background(), []string{reg.host + "/app:1", reg.host + "/other"}, anon()); err != nil {
		t.Fatalf("open registry: %v", err)
	}

	for _, tc := range []struct {
		status int
		reason string
	}{
		{http.StatusUnauthorized, "unauthorized"},
		{http.StatusForbidden, "denied"},
	} {
		reg.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPost {
				w.WriteHeader(tc.status)
				return true
			}
			return false
		})
		err := CheckPushAccess(context.Background(), []string{reg.host + "/team/app:1"}, anon(), WithRetries(0))
		if err == nil {
			t.Fatalf("status %d: no error", tc.status)
		}
		for _, want := range []string{"registry " + reg.host, "repository team/app", tc.reason} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("status %d: error %q lacks %q", tc.status, err, want)
			}
		}
	}
}

func TestCheckPushAccessConnectionRefused(t *testing.T) {
	s := httptest.NewServer(http.NotFoundHandler())
	host := strings.TrimPrefix(s.URL, "http://")
	s.Close() // nothing listens there now
	err := CheckPushAccess(context.Background(), []string{host + "/app"}, anon(), WithRetries(0))
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("err = %v, want connection refused", err)
	}
}

func TestCheckPushAccessRejectsBadDestination(t *testing.T) {
	err := CheckPushAccess(context.Background(), []string{"ok.example/app", "Not A Ref"}, anon())
	if err == nil || !strings.Contains(err.Error(), "Not A Ref") {
		t.Errorf("err = %v, want one naming the bad destination", err)
	}
}
