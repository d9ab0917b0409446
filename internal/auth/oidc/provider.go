package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"apoxy.dev/apoxy/internal/auth/jwt"
)

// MaxDocumentSize bounds what the RP reads from the provider: a discovery document or a
// token response.
const MaxDocumentSize = 1 << 20

// Discovery retry bounds: after a failed discovery the next attempt waits 1 s, doubling with
// each further failure up to maxDiscoveryBackoff; requests meanwhile fail fast.
const (
	firstDiscoveryBackoff = time.Second
	maxDiscoveryBackoff   = 30 * time.Second
)

// endpoints is the provider as the RP uses it, resolved once: from the Config's overrides
// and, unless they cover everything, the discovery document.
type endpoints struct {
	authorization string
	token         string
	endSession    string // "" when the provider has none
	jwksURI       string
	postAuth      bool // client_secret_post instead of client_secret_basic
	keys          *jwt.Remote
	verifier      *jwt.Verifier
}

// metadata is the part of the discovery document (OpenID Connect Discovery 1.0 §3) the RP
// reads.
type metadata struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	EndSessionEndpoint    string   `json:"end_session_endpoint"`
	TokenAuthMethods      []string `json:"token_endpoint_auth_methods_supported"`
}

// discovery resolves the provider lazily, once: concurrent callers share one attempt, a
// failed attempt backs off, and the result is kept for the RP's life (a changed provider
// configuration comes with a new Config, and so a new RP).
type discovery struct {
	mu       sync.Mutex
	ep       *endpoints
	inflight chan struct{}
	lastErr  error
	failures int
	retryAt  time.Time
}

// errClosed is returned once Close was called.
var errClosed = errors.New("oidc: relying party closed")

// provider returns the resolved endpoints, resolving them first when needed. It waits at
// most for the RP's Timeout (or ctx).
func (rp *RP) provider(ctx context.Context) (*endpoints, error) {
	d := &rp.disc
	for {
		d.mu.Lock()
		if d.ep != nil {
			ep := d.ep
			d.mu.Unlock()
			return ep, nil
		}
		if rp.ctx.Err() != nil {
			d.mu.Unlock()
			return nil, errClosed
		}
		if ch := d.inflight; ch != nil {
			d.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if d.lastErr != nil && rp.now().Before(d.retryAt) {
			err := d.lastErr
			d.mu.Unlock()
			return nil, err
		}
		ch := make(chan struct{})
		d.inflight = ch
		d.mu.Unlock()

		ep, err := rp.resolve()
		d.mu.Lock()
		d.inflight = nil
		if err != nil {
			d.lastErr = err
			d.failures++
			d.retryAt = rp.now().Add(min(firstDiscoveryBackoff<<min(d.failures-1, 10), maxDiscoveryBackoff))
		} else if rp.ctx.Err() != nil {
			ep.keys.Close() // Close ran meanwhile: nobody will close these
			err = errClosed
		} else {
			d.ep, d.lastErr, d.failures = ep, nil, 0
		}
		d.mu.Unlock()
		close(ch)
		if err != nil {
			return nil, err
		}
		return ep, nil
	}
}

// resolve builds the endpoints: the Config's, completed by discovery unless the
// authorization, token and JWKS endpoints are all configured.
func (rp *RP) resolve() (*endpoints, error) {
	c := &rp.cfg
	ep := &endpoints{
		authorization: c.AuthorizationEndpoint,
		token:         c.TokenEndpoint,
		endSession:    c.EndSessionEndpoint,
		jwksURI:       c.JWKSURI,
	}
	if ep.authorization == "" || ep.token == "" || ep.jwksURI == "" {
		md, err := rp.discover()
		if err != nil {
			return nil, err
		}
		if ep.authorization == "" {
			ep.authorization = md.AuthorizationEndpoint
		}
		if ep.token == "" {
			ep.token = md.TokenEndpoint
		}
		if ep.jwksURI == "" {
			ep.jwksURI = md.JWKSURI
		}
		if ep.endSession == "" {
			ep.endSession = md.EndSessionEndpoint
		}
		// client_secret_basic is the default (RFC 8414 §2); post only when the provider
		// lists post and not basic.
		m := md.TokenAuthMethods
		ep.postAuth = len(m) > 0 && !slices.Contains(m, "client_secret_basic") && slices.Contains(m, "client_secret_post")
	}
	for _, u := range []struct{ name, v string }{
		{"authorization_endpoint", ep.authorization},
		{"token_endpoint", ep.token},
		{"jwks_uri", ep.jwksURI},
		{"end_session_endpoint", ep.endSession},
	} {
		if u.v == "" && u.name == "end_session_endpoint" {
			continue
		}
		if err := checkEndpoint(u.v, c.AllowHTTP); err != nil {
			return nil, fmt.Errorf("oidc: provider %s: %w", u.name, err)
		}
	}
	keys, err := jwt.NewRemote(jwt.RemoteConfig{
		URI:     ep.jwksURI,
		Timeout: rp.timeout,
		Client:  c.HTTPClient,
		Now:     rp.now,
	})
	if err != nil {
		return nil, fmt.Errorf("oidc: jwks_uri: %w", err)
	}
	v, err := jwt.NewWithOptions(jwt.Options{CacheSize: -1, Now: rp.now}, jwt.Provider{
		Name:       "oidc",
		Issuer:     c.Issuer,
		Audiences:  []string{c.ClientID},
		Algorithms: c.Algorithms,
		ClockSkew:  c.ClockSkew,
		Keys:       keys,
	})
	if err != nil {
		keys.Close()
		return nil, fmt.Errorf("oidc: %w", err)
	}
	ep.keys, ep.verifier = keys, v
	return ep, nil
}

// discover fetches issuer + "/.well-known/openid-configuration" and checks that it is the
// issuer's (OpenID Connect Discovery 1.0 §4.3: the "issuer" must equal the configured one).
func (rp *RP) discover() (*metadata, error) {
	u := strings.TrimSuffix(rp.cfg.Issuer, "/") + "/.well-known/openid-configuration"
	ctx, cancel := context.WithTimeout(rp.ctx, rp.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("oidc: discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := rp.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("oidc: discovery: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocumentSize+1))
	if err != nil {
		return nil, fmt.Errorf("oidc: discovery: GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("oidc: discovery: GET %s: status %d", u, resp.StatusCode)
	}
	if len(body) > MaxDocumentSize {
		return nil, fmt.Errorf("oidc: discovery: GET %s: over %d bytes", u, MaxDocumentSize)
	}
	var md metadata
	if err := json.Unmarshal(body, &md); err != nil {
		return nil, fmt.Errorf("oidc: discovery: GET %s: %w", u, err)
	}
	if md.Issuer != rp.cfg.Issuer {
		return nil, fmt.Errorf("oidc: discovery: issuer %.100q is not the configured %q", md.Issuer, rp.cfg.Issuer)
	}
	return &md, nil
}

// checkEndpoint requires an absolute https URL (http too when allowHTTP, or for a loopback
// host) without fragment or credentials.
func checkEndpoint(raw string, allowHTTP bool) error {
	if raw == "" {
		return errors.New("missing")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%.200q is not a URL", raw)
	}
	switch {
	case u.Host == "":
		return fmt.Errorf("%.200q has no host", raw)
	case u.User != nil || u.Fragment != "":
		return fmt.Errorf("%.200q has credentials or a fragment", raw)
	case u.Scheme == "https":
	case u.Scheme == "http" && (allowHTTP || isLoopback(u.Hostname())):
	default:
		return fmt.Errorf("%.200q is not an https URL", raw)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
