package registry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// writePEM writes one PEM block to a new file in dir and returns its path.
func writePEM(t *testing.T, dir, file, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, file)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tlsRegistry serves an in-memory registry over TLS under the name
// "example.com:PORT" (httptest's certificate covers example.com), reached
// through dialTo. It returns the host, the base transport and the path of
// the server certificate as a CA bundle.
func tlsRegistry(t *testing.T, configure func(*tls.Config)) (host string, base *http.Transport, caPath string) {
	t.Helper()
	s := httptest.NewUnstartedServer(quietRegistry())
	if configure != nil {
		s.TLS = &tls.Config{}
		configure(s.TLS)
	}
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // expected handshake failures
	s.StartTLS()
	t.Cleanup(s.Close)
	addr := strings.TrimPrefix(s.URL, "https://")
	_, port, _ := strings.Cut(addr, ":")
	caPath = writePEM(t, t.TempDir(), "ca.pem", "CERTIFICATE", s.Certificate().Raw)
	return "example.com:" + port, dialTo(addr), caPath
}

// seedVia writes a random image at ref over rt, trusting anything.
func seedVia(t *testing.T, ref string, rt *http.Transport) {
	t.Helper()
	r, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		t.Fatal(err)
	}
	rt = rt.Clone()
	if rt.TLSClientConfig == nil {
		rt.TLSClientConfig = &tls.Config{}
	}
	rt.TLSClientConfig.InsecureSkipVerify = true
	if err := remote.Write(r, randomImage(t, 1), remote.WithTransport(rt)); err != nil {
		t.Fatal(err)
	}
}

func TestPullOverTLS(t *testing.T) {
	host, base, caPath := tlsRegistry(t, nil)
	ref := host + "/app:1"
	seedVia(t, ref, base)
	ctx := context.Background()

	_, err := Pull(ctx, ref, anon(), WithTransport(base), WithRetries(0))
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted certificate: err = %v, want a certificate error", err)
	}
	if _, err := Pull(ctx, ref, anon(), WithTransport(base), WithSkipTLSVerify(host)); err != nil {
		t.Errorf("WithSkipTLSVerify: %v", err)
	}
	if _, err := Pull(ctx, ref, anon(), WithTransport(base), WithSkipTLSVerifyAll(true)); err != nil {
		t.Errorf("WithSkipTLSVerifyAll: %v", err)
	}
	if _, err := Pull(ctx, ref, anon(), WithTransport(base), WithRegistryCertificate(host, caPath)); err != nil {
		t.Errorf("WithRegistryCertificate: %v", err)
	}
	// Settings for another registry do not apply.
	if _, err := Pull(ctx, ref, anon(), WithTransport(base), WithSkipTLSVerify("other.example:443"), WithRetries(0)); err == nil {
		t.Error("skip-verify for another registry made an untrusted one work")
	}
	_, err = Pull(ctx, ref, anon(), WithTransport(base), WithRegistryCertificate(host, filepath.Join(t.TempDir(), "missing.pem")))
	if err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Errorf("missing CA file: err = %v, want one naming it", err)
	}
}

func TestCheckPushAccessReportsTLS(t *testing.T) {
	host, base, _ := tlsRegistry(t, nil)
	err := CheckPushAccess(context.Background(), []string{host + "/app"}, anon(), WithTransport(base), WithRetries(0))
	if err == nil || !strings.Contains(err.Error(), ": TLS: ") {
		t.Errorf("err = %v, want reason TLS", err)
	}
}

func TestPlainHTTPNeedsInsecure(t *testing.T) {
	reg := newTestRegistry(t)
	_, port, _ := strings.Cut(reg.host, ":")
	host := "registry.test:" + port // not loopback: https unless insecure
	base := dialTo(reg.host)
	img := randomImage(t, 1)
	ctx := context.Background()

	if _, err := Push(ctx, img, []string{host + "/app:1"}, anon(), WithTransport(base), WithRetries(0)); err == nil {
		t.Fatal("push over plain HTTP without WithInsecure succeeded")
	}
	if _, err := Push(ctx, img, []string{host + "/app:1"}, anon(), WithTransport(base), WithInsecure(host)); err != nil {
		t.Fatalf("push WithInsecure: %v", err)
	}
	if _, err := Pull(ctx, host+"/app:1", anon(), WithTransport(base), WithRetries(0)); err == nil {
		t.Error("pull over plain HTTP without insecure succeeded")
	}
	if _, err := Pull(ctx, host+"/app:1", anon(), WithTransport(base), WithInsecureAll(true)); err != nil {
		t.Errorf("pull WithInsecureAll: %v", err)
	}
	if err := CheckPushAccess(ctx, []string{host + "/app"}, anon(), WithTransport(base), WithInsecure(host)); err != nil {
		t.Errorf("check WithInsecure: %v", err)
	}
}

// newClientCert makes a CA and a client certificate it signed, returning
// the CA pool and the PEM paths of the client pair.
func newClientCert(t *testing.T) (*x509.CertPool, string, string) {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kiln"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, writePEM(t, dir, "client.pem", "CERTIFICATE", der), writePEM(t, dir, "client-key.pem", "EC PRIVATE KEY", keyDER)
}

func TestClientCertificate(t *testing.T) {
	pool, certPath, keyPath := newClientCert(t)
	host, base, caPath := tlsRegistry(t, func(c *tls.Config) {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = pool
	})
	img := randomImage(t, 1)
	ctx := context.Background()
	trust := WithRegistryCertificate(host, caPath)

	if _, err := Push(ctx, img, []string{host + "/app:1"}, anon(), WithTransport(base), trust, WithRetries(0)); err == nil {
		t.Fatal("push without a client certificate succeeded against an mTLS registry")
	}
	if _, err := Push(ctx, img, []string{host + "/app:1"}, anon(), WithTransport(base), trust,
		WithClientCertificate(host, certPath, keyPath)); err != nil {
		t.Fatalf("push with a client certificate: %v", err)
	}
	if _, err := Pull(ctx, host+"/app:1", anon(), WithTransport(base), trust,
		WithClientCertificate(host, certPath, keyPath)); err != nil {
		t.Errorf("pull with a client certificate: %v", err)
	}
	_, err := Pull(ctx, host+"/app:1", anon(), WithTransport(base), trust, WithClientCertificate(host, keyPath, certPath))
	if err == nil || !strings.Contains(err.Error(), "client certificate") {
		t.Errorf("swapped cert/key: err = %v, want a client certificate error", err)
	}
}
