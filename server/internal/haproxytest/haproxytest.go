// Package haproxytest runs Debian's HAProxy as a TLS terminator in front of
// a fanwire listener, for tests: TCP mode, send-proxy-v2, a certificate
// from a CA made for the test.
package haproxytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// ServerName is the name in the certificate HAProxy presents.
const ServerName = "fanwire.test"

// Proxy is a running HAProxy.
type Proxy struct {
	Addr string         // host:port of the TLS listener
	TLS  *tls.Config    // trusts only the test CA, ServerName set
	CA   *x509.CertPool // the test CA
	Logs *Buffer        // HAProxy's stdout and stderr
}

// Require skips the test when haproxy is not installed, or fails it when
// FANWIRE_REQUIRE_CLIENTS=1 (make test installs it through .ci/test-deps.sh).
func Require(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("haproxy")
	if err == nil {
		return path
	}
	if os.Getenv("FANWIRE_REQUIRE_CLIENTS") == "1" {
		t.Fatal("haproxy is not installed and FANWIRE_REQUIRE_CLIENTS=1: run .ci/test-deps.sh (make deps)")
	}
	t.Skip("haproxy is not installed; run .ci/test-deps.sh (FANWIRE_REQUIRE_CLIENTS=1 makes this a failure)")
	return ""
}

// Start runs HAProxy terminating TLS on a free loopback port and forwarding
// each connection to backend (host:port) with a PROXY v2 header. It is
// killed (by its PID) when the test ends.
func Start(t testing.TB, backend string) *Proxy {
	t.Helper()
	bin := Require(t)
	dir := t.TempDir()
	ca, pemFile := writeCertificates(t, dir)
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cfg := fmt.Sprintf(Config, addr, pemFile, backend)
	cfgFile := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &Buffer{}
	cmd := exec.Command(bin, "-db", "-f", cfgFile)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("haproxy: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("haproxy logs:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("haproxy exited: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy not listening on %s: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &Proxy{Addr: addr, CA: ca, Logs: logs, TLS: &tls.Config{RootCAs: ca, ServerName: ServerName, MinVersion: tls.VersionTLS12}}
}

// Config is the haproxy.cfg the tests run (listen address, PEM file,
// backend): the README's TCP-mode configuration. Idle WebSockets need the
// long client/server/tunnel timeouts; fanwire's own pings keep them busy.
const Config = `global
	maxconn 4096

defaults
	mode tcp
	timeout connect 5s
	timeout client 1h
	timeout server 1h
	timeout tunnel 1h
	timeout client-fin 30s

frontend wss
	bind %s ssl crt %s alpn http/1.1
	default_backend fanwire

backend fanwire
	server fanwire %s send-proxy-v2
`

// writeCertificates makes a CA and a server certificate for ServerName and
// 127.0.0.1 signed by it; HAProxy's crt file is the chain plus the key.
func writeCertificates(t testing.TB, dir string) (*x509.CertPool, string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fanwire test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: ServerName},
		DNSNames:     []string{ServerName},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	var pemData []byte
	pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	file := filepath.Join(dir, "server.pem")
	if err := os.WriteFile(file, pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return pool, file
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Buffer is a goroutine-safe log sink.
type Buffer struct {
	mu sync.Mutex
	b  []byte
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b = append(b.b, p...)
	return len(p), nil
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.b)
}
