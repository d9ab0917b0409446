// Package acme obtains and renews the certificates of DomainRecords from ACME certificate
// authorities (RFC 8555), on acmez (the ACME client under certmagic).
//
// One Manager serves the process; each project has its own Project: its own ACME account
// key per CA, its certificates kept in its own Secrets (namespace default, `<record>-tls`,
// kubernetes.io/tls), so nothing of one tenant's certificates is stored with another's, and
// everything survives a restart. HTTP-01 is answered by the project's Gateway itself: the
// pending answers are added to the project's snapshot as exact-path routes that match before
// any route of the user's (Amend). DNS-01 is answered by the project's own zone through the
// server's authoritative DNS (the domain reconciler adds the TXT records the Project holds).
// Issued certificates are attached to the target Gateway's HTTPS listeners by SNI in the same
// snapshot, so they serve from the next swap without dropping a connection.
//
// Renewal starts at the CA's ARI window (RFC 9773) when it publishes one, else when a third
// of the lifetime is left; a failed order is retried with backoff and never removes a
// certificate that still serves.
package acme

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Well-known ACME directories.
const (
	LetsEncrypt        = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStaging = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// CA is an ACME certificate authority: a short name (letsencrypt, letsencrypt-staging, or the
// directory's host) and its directory URL.
type CA struct {
	Name string
	URL  string
}

// ResolveCA turns "letsencrypt", "letsencrypt-staging" or an https:// directory URL into a CA.
func ResolveCA(s string) (CA, error) {
	switch s {
	case "letsencrypt":
		return CA{Name: "letsencrypt", URL: LetsEncrypt}, nil
	case "letsencrypt-staging":
		return CA{Name: "letsencrypt-staging", URL: LetsEncryptStaging}, nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return CA{}, fmt.Errorf("%q is not a CA: use letsencrypt, letsencrypt-staging or the https:// URL of an ACME directory", s)
	}
	return CA{Name: u.Host, URL: s}, nil
}

// ParseCAs parses a comma-separated list of CAs (--acme-ca), tried in order. "" and "off"
// give none: no certificates are issued.
func ParseCAs(list string) ([]CA, error) {
	if list == "" || list == "off" {
		return nil, nil
	}
	var out []CA
	for _, s := range strings.Split(list, ",") {
		ca, err := ResolveCA(strings.TrimSpace(s))
		if err != nil {
			return nil, err
		}
		out = append(out, ca)
	}
	return out, nil
}

// Options configure the Manager.
type Options struct {
	// CAs are tried in order for every certificate (a record's tls.certificateAuthority goes
	// first). None: certificates are not issued, and records say so in status.
	CAs []CA
	// Email is the contact given to CAs for new accounts (optional).
	Email string
	// Roots are trusted for the CAs' own HTTPS (nil: the system pool, which SSL_CERT_FILE
	// can replace).
	Roots *x509.CertPool
	// Resolver returns the address of the DNS server that answers DNS-01 challenges (the
	// server's own authoritative server, known once it listens); a challenge is handed to
	// the CA once it answers it. Nil or "": DNS-01 is unavailable.
	Resolver func() string
	// Concurrency bounds orders in flight across all projects (default 2).
	Concurrency int
	// RetryBase is the wait after a first failed order (default 2 minutes: Let's Encrypt allows
	// 5 failed validations per name per hour), doubled after each
	// failure up to RetryMax (default 3 hours).
	RetryBase, RetryMax time.Duration
	// ChallengeWait bounds how long a challenge is checked to be served before the CA is
	// asked to validate it (default 30 s).
	ChallengeWait time.Duration
	Logger        *slog.Logger
	Now           func() time.Time
}

// Manager obtains and renews certificates for every project of the process.
type Manager struct {
	opts    Options
	client  *http.Client
	slots   chan struct{}
	metrics *Metrics

	mu       sync.Mutex
	projects map[string]*Project
}

// New makes the process's Manager.
func New(opts Options) *Manager {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 2
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = 2 * time.Minute
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 3 * time.Hour
	}
	if opts.ChallengeWait <= 0 {
		opts.ChallengeWait = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: opts.Roots, MinVersion: tls.VersionTLS12}
	return &Manager{
		opts:     opts,
		client:   &http.Client{Transport: tr, Timeout: time.Minute},
		slots:    make(chan struct{}, opts.Concurrency),
		metrics:  processMetrics(),
		projects: map[string]*Project{},
	}
}

func (m *Manager) resolver() string {
	if m.opts.Resolver == nil {
		return ""
	}
	return m.opts.Resolver()
}

// Enabled reports whether any CA is configured.
func (m *Manager) Enabled() bool { return m != nil && len(m.opts.CAs) > 0 }

// Project returns a project's certificates, creating them.
func (m *Manager) Project(name string) *Project {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.projects[name]
	if p == nil {
		p = newProject(m, name)
		m.projects[name] = p
	}
	return p
}

// Release stops a project's orders and timers and forgets it (the project was deleted or its
// controller stopped). Its Secrets stay.
func (m *Manager) Release(name string) {
	m.mu.Lock()
	p := m.projects[name]
	delete(m.projects, name)
	m.mu.Unlock()
	if p != nil {
		p.stop()
		m.metrics.forget(name)
	}
}

// backoff is the wait after the n-th consecutive failure (n ≥ 1).
func (m *Manager) backoff(n int) time.Duration {
	d := m.opts.RetryBase
	for i := 1; i < n && d < m.opts.RetryMax; i++ {
		d *= 2
	}
	return min(d, m.opts.RetryMax)
}
