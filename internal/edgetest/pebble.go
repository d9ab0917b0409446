package edgetest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/pki"
)

// Pebble is Let's Encrypt's test ACME server (Debian's pebble binary) run for a test. Its
// directory URL and the root of its own HTTPS are known before it starts (NewPebble), so the
// product can be started pointing at it; Start runs it once the gateway's HTTP port and the
// DNS server its validator asks are known.
type Pebble struct {
	t       testing.TB
	bin     string
	dir     string
	port    int
	mgmt    int
	apiCert []byte
	cmd     *exec.Cmd
	// DirURL is the ACME directory.
	DirURL string
	// APIRoots trust Pebble's own HTTPS (what --acme-ca-root gives the product).
	APIRoots *x509.CertPool
	// APIRootFile is that root as a PEM file.
	APIRootFile string
}

// NewPebble prepares a Pebble on free loopback ports (skipped when Debian's pebble is not
// installed, unless APOXY_REQUIRE_PEBBLE is set, as CI does).
func NewPebble(t testing.TB) *Pebble {
	t.Helper()
	bin, err := exec.LookPath("pebble")
	if err != nil {
		if os.Getenv("APOXY_REQUIRE_PEBBLE") != "" {
			t.Fatal("pebble is not installed (apt-get install -y pebble)")
		}
		t.Skip("pebble is not installed (apt-get install -y pebble)")
	}
	dir := t.TempDir()
	certPEM, keyPEM, err := pki.SelfSigned("pebble", []string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	p := &Pebble{t: t, bin: bin, dir: dir, port: freePort(t), mgmt: freePort(t), apiCert: certPEM,
		APIRootFile: filepath.Join(dir, "api-root.pem"), APIRoots: x509.NewCertPool()}
	p.APIRoots.AppendCertsFromPEM(certPEM)
	for name, data := range map[string][]byte{"api-root.pem": certPEM, "cert.pem": certPEM, "key.pem": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p.DirURL = fmt.Sprintf("https://127.0.0.1:%d/dir", p.port)
	return p
}

// Start runs Pebble: its validator fetches HTTP-01 answers on httpPort (of the address the
// name resolves to) and resolves names with the DNS server at dnsAddr. It is killed when the
// test ends.
func (p *Pebble) Start(httpPort int, dnsAddr string) {
	p.t.Helper()
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":           net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)),
		"managementListenAddress": net.JoinHostPort("127.0.0.1", strconv.Itoa(p.mgmt)),
		"certificate":             filepath.Join(p.dir, "cert.pem"),
		"privateKey":              filepath.Join(p.dir, "key.pem"),
		"httpPort":                httpPort,
		"tlsPort":                 freePort(p.t),
		"ocspResponderURL":        "",
	}}
	data, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(p.dir, "pebble.json")
	if err := os.WriteFile(cfgFile, data, 0o600); err != nil {
		p.t.Fatal(err)
	}
	p.cmd = exec.Command(p.bin, "-config", cfgFile, "-dnsserver", dnsAddr)
	// No random sleeps before validation, no reused authorizations (every order solves its
	// challenge), no rejected nonces (timing is deterministic).
	p.cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_AUTHZREUSE=0", "PEBBLE_WFE_NONCEREJECT=0")
	if testing.Verbose() {
		p.cmd.Stdout, p.cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(p.Stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := p.get(p.DirURL); err == nil {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("pebble on %s did not start", p.DirURL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills Pebble (to watch orders fail).
func (p *Pebble) Stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		p.cmd = nil
	}
}

func (p *Pebble) get(url string) ([]byte, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.APIRoots}}}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// IssuerRoots returns the root of the certificates Pebble issues (generated at its start,
// from its management interface): what `curl --cacert` is given.
func (p *Pebble) IssuerRoots() (*x509.CertPool, []byte) {
	p.t.Helper()
	pemData, err := p.get(fmt.Sprintf("https://127.0.0.1:%d/roots/0", p.mgmt))
	if err != nil {
		p.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		p.t.Fatalf("pebble's root is not PEM: %q", pemData)
	}
	return pool, pemData
}
