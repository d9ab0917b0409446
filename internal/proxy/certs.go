package proxy

import (
	"crypto/tls"
	"fmt"
	"strings"

	"apoxy.dev/apoxy/internal/ir"
)

// certIndex picks a listener certificate by SNI: certificates bound to the exact server name,
// then to the longest matching wildcard, then the listener's default ones; among candidates the
// first the client supports (by SAN and key type) wins.
type certIndex struct {
	exact    map[string][]*tls.Certificate
	wildcard map[string][]*tls.Certificate // by suffix ".example.com"
	fallback []*tls.Certificate
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
	idx := &certIndex{exact: map[string][]*tls.Certificate{}, wildcard: map[string][]*tls.Certificate{}}
	if cfg == nil {
		return idx, nil
	}
	for _, sc := range cfg.Certificates {
		cert := byName[sc.Certificate]
		switch h := sc.Hostname; {
		case h == "" || h == "*":
			idx.fallback = append(idx.fallback, cert)
		case strings.HasPrefix(h, "*."):
			idx.wildcard[h[1:]] = append(idx.wildcard[h[1:]], cert)
		default:
			idx.exact[h] = append(idx.exact[h], cert)
		}
	}
	return idx, nil
}

func (c *certIndex) get(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if list := c.exact[name]; len(list) > 0 {
		return pick(hello, list), nil
	}
	// Longest wildcard suffix first.
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			if list := c.wildcard[name[i:]]; len(list) > 0 {
				return pick(hello, list), nil
			}
		}
	}
	if len(c.fallback) > 0 {
		return pick(hello, c.fallback), nil
	}
	return nil, fmt.Errorf("no certificate for %q", name)
}

func pick(hello *tls.ClientHelloInfo, list []*tls.Certificate) *tls.Certificate {
	for _, c := range list {
		if hello.SupportsCertificate(c) == nil {
			return c
		}
	}
	return list[0]
}
