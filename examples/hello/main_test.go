package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRoutes(t *testing.T) {
	srv := httptest.NewServer(routes())
	defer srv.Close()
	for path, want := range map[string]struct {
		code int
		body string
	}{
		"/":        {200, "Hello, World! v1.0"},
		"/healthz": {200, "ok\n"},
		"/hello":   {404, "404 page not found\n"},
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want.code || string(body) != want.body {
			t.Errorf("GET %s = %d %q, want %d %q", path, resp.StatusCode, body, want.code, want.body)
		}
	}
}
