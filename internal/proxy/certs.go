package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"

	"apoxy.dev/apoxy/internal/hostname"
	"apoxy.dev/apoxy/internal/ir"
)

// certIndex picks a listener certificate by SNI: certificates bound to the exact server name,
// then to the longest matching wildcard, then the listener's default ones; among candidates the
// first the client supports (by SAN and key type) wins. A server name whose listener checks
// client certificates gets its own tls.Config asking for one.
type certIndex struct {
	exact    map[string]*sniEntry
	wildcard map[string]*sniEntry // by suffix ".example.com"
	fallback *sniEntry
}

// sniEntry is what one server name pattern serves.
type sniEntry struct {
	certs []*tls.Certificate
	// config is non-nil when clients must (or may) present a certificate.
	config *tls.Config
}

func newCertIndex(cfg *ir.ListenerTLS, all []*ir.Certificate) (*certIndex, error) {
	byName := map[string]*tls.Certificate{}
	for _, c := range all {
		pair, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w", c.Name, err)
		}
		byName[c.Name] = &pair
	}
	idx := &certIndex{exact: map[string]*sniEntry{}, wildcard: map[string]*sniEntry{}}
	if cfg == nil {
		return idx, nil
	}
	for _, sc := range cfg.Certificates {
		e := idx.entry(sc.Hostname)
		e.certs = append(e.certs, byName[sc.Certificate])
		if v := sc.ClientValidation; v != nil && e.config == nil {
			e.config = clientAuthConfig(e, v)
		}
	}
	return idx, nil
}

// entry returns (creating it) the entry of a server name pattern.
func (c *certIndex) entry(pattern string) *sniEntry {
	m, key := c.exact, pattern
	switch hostname.KindOf(pattern) {
	case hostname.Any:
		if c.fallback == nil {
			c.fallback = &sniEntry{}
		}
		return c.fallback
	case hostname.Wildcard:
		m, key = c.wildcard, hostname.Suffix(pattern)
	}
	e := m[key]
	if e == nil {
		e = &sniEntry{}
		m[key] = e
	}
	return e
}

// clientAuthConfig is the TLS configuration of a server name whose listener checks client
// certificates: verified against the CAs (AllowValidOnly), or requested and let through
// whatever they are (AllowInsecureFallback).
func clientAuthConfig(e *sniEntry, v *ir.ClientValidation) *tls.Config {
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) { return pick(hello, e.certs), nil },
		ClientAuth:     tls.RequireAndVerifyClientCert,
		ClientCAs:      x509.NewCertPool(),
	}
	cfg.ClientCAs.AppendCertsFromPEM(v.CAPEM)
	if v.AllowInsecureFallback {
		cfg.ClientAuth = tls.RequestClientCert
	}
	return cfg
}

// lookup returns the entry serving a client hello's server name.
func (c *certIndex) lookup(hello *tls.ClientHelloInfo) (*sniEntry, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if e := c.exact[name]; e != nil {
		return e, nil
	}
	// Longest wildcard suffix first.
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			if e := c.wildcard[name[i:]]; e != nil {
				return e, nil
			}
		}
	}
	if c.fallback != nil {
		return c.fallback, nil
	}
	return nil, fmt.Errorf("no certificate for %q", name)
}

func (c *certIndex) get(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	e, err := c.lookup(hello)
	if err != nil {
		return nil, err
	}
	return pick(hello, e.certs), nil
}

// config returns the TLS configuration for a client hello: nil (the socket's own) unless the
// server name's listener checks client certificates.
func (c *certIndex) config(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	e, err := c.lookup(hello)
	if err != nil {
		return nil, nil // the socket's config reports the missing certificate
	}
	return e.config, nil
}

func pick(hello *tls.ClientHelloInfo, list []*tls.Certificate) *tls.Certificate {
	for _, c := range list {
		if hello.SupportsCertificate(c) == nil {
			return c
		}
	}
	return list[0]
}
