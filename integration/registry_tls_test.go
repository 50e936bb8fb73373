package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/testenv"
)

// TestTLSRegistriesInPod pulls from and pushes to HTTPS registries whose CAs the system does
// not trust: the pull side through SSL_CERT_DIR (Go's system pool reads it), the push side
// through --registry-certificate; without the CA the pull fails naming the registry and the
// certificate problem; --skip-tls-verify-registry / --skip-tls-verify-pull work without it.
func TestTLSRegistriesInPod(t *testing.T) {
	requireRoot(t)
	from := testenv.StartRegistry(t, testenv.RegistryOptions{TLS: true})
	to := testenv.StartRegistry(t, testenv.RegistryOptions{TLS: true})
	base := testenv.PushBusybox(t, from, "base/busybox:latest")
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM " + base + "\nRUN echo tls > /tls\n"})

	t.Run("SSL_CERT_DIR and --registry-certificate", func(t *testing.T) {
		dest := to.Ref("team/tls:1")
		p := registryPod(t, ctx, "--destination", dest, "--registry-certificate", to.Addr+"=/kaniko/to-ca.pem")
		p.Env = []string{"SSL_CERT_DIR=/etc/kiln-test-ca"}
		p.Mounts = map[string]string{"/etc/kiln-test-ca": from.CertDir, "/kaniko/to-ca.pem": to.CAFile}
		runPodWant(t, p, true)
		file(t, testenv.ExportImage(t, to, dest), "tls")
	})
	t.Run("no CA for the base registry", func(t *testing.T) {
		dest := to.Ref("team/tls:2")
		p := registryPod(t, ctx, "--destination", dest, "--registry-certificate", to.Addr+"=/kaniko/to-ca.pem")
		p.Mounts = map[string]string{"/kaniko/to-ca.pem": to.CAFile}
		res := runPodWant(t, p, false)
		if !strings.Contains(res.Stderr, "pull "+base) || !strings.Contains(res.Stderr, "certificate signed by unknown authority") {
			t.Errorf("log does not name the base and the unknown CA:\n%s", res.Stderr)
		}
		notPushed(t, to, dest)
	})
	t.Run("skip verify", func(t *testing.T) {
		dest := to.Ref("team/tls:3")
		p := registryPod(t, ctx, "--destination", dest, "--skip-tls-verify-registry", to.Addr, "--skip-tls-verify-pull")
		runPodWant(t, p, true)
		file(t, testenv.ExportImage(t, to, dest), "tls")
	})
}

// TestRegistryClientCertInPod pushes through an HTTPS proxy that demands a client certificate
// (mutual TLS) in front of a plain registry: --registry-client-cert makes it pass, and
// without it the build fails before any step.
func TestRegistryClientCertInPod(t *testing.T) {
	requireRoot(t)
	plain := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, plain, "base/busybox:latest")
	dir := t.TempDir()
	clientCA, certFile, keyFile := writeClientCert(t, dir)
	proxy := startFaultProxy(t, plain, &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCA, MinVersion: tls.VersionTLS12})
	serverCA := filepath.Join(dir, "server-ca.pem")
	if err := os.WriteFile(serverCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: proxy.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM " + base + "\nRUN echo mtls > /mtls\n"})
	mounts := map[string]string{"/kaniko/certs": dir}
	tlsArgs := []string{"--insecure-pull", "--registry-certificate", proxy.Addr + "=/kaniko/certs/server-ca.pem"}

	p := registryPod(t, ctx, append(tlsArgs, "--destination", proxy.Addr+"/team/mtls:1",
		"--registry-client-cert", proxy.Addr+"=/kaniko/certs/"+filepath.Base(certFile)+",/kaniko/certs/"+filepath.Base(keyFile))...)
	p.Mounts = mounts
	runPodWant(t, p, true)
	file(t, testenv.ExportImage(t, plain, plain.Ref("team/mtls:1")), "mtls")

	p = registryPod(t, ctx, append(tlsArgs, "--destination", proxy.Addr+"/team/mtls:2")...)
	p.Mounts = mounts
	res := runPodWant(t, p, false)
	if !strings.Contains(res.Stderr, "registry "+proxy.Addr+", repository team/mtls") || !strings.Contains(res.Stderr, "certificate") {
		t.Errorf("log does not name the registry and the missing certificate:\n%s", res.Stderr)
	}
	noStepRan(t, res, "mtls")
	notPushed(t, plain, plain.Ref("team/mtls:2"))
}

// writeClientCert makes a CA and a client certificate it signs, writes the certificate and
// key as PEM files in dir and returns a pool trusting the CA and the two paths.
func writeClientCert(t *testing.T, dir string) (*x509.CertPool, string, string) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	caKey, clientKey := newKey(), newKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kiln client CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	clientTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kiln builder"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	clientDER, err := x509.CreateCertificate(rand.Reader, clientTmpl, ca, &clientKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(clientKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: clientDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, certFile, keyFile
}
