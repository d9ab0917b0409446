package extauthz

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// HTTPConfig configures an HTTPClient.
type HTTPConfig struct {
	// URL is the service's base URL: http or https, host[:port], and optionally a path that
	// goes before PathPrefix. The scheme and authority say where the check request goes.
	URL string
	// PathPrefix goes before the client's path: check path = PathPrefix + original path,
	// concatenated as is (Envoy-compatible).
	PathPrefix string
	// Host is the Host of the check request; empty sends the client's Host, as Envoy does.
	Host string
	// Transport sends the check requests. Never an http.Client: redirects from the service
	// must reach the client, not be followed. When nil, NewHTTP builds one from Dial, TLS and
	// H2C that does not use proxies from the environment and does not decompress.
	Transport http.RoundTripper
	// Dial opens connections to the service when Transport is nil; nil dials TCP directly.
	Dial DialFunc
	// TLS configures https when Transport is nil.
	TLS *tls.Config
	// H2C speaks HTTP/2 without TLS (prior knowledge) when Transport is nil and the URL is
	// http, for a Backend whose protocol is h2c.
	H2C bool

	// HeadersToUpstream are copied from a 200 answer onto the upstream request, overwriting;
	// empty copies none. It also limits the headers the service may remove with
	// x-envoy-auth-headers-to-remove (empty: any but Protected ones).
	HeadersToUpstream []string
	// HeadersToClient limits the headers of a denial sent to the client; empty sends all but
	// Protected ones. WWW-Authenticate and Location are always sent.
	HeadersToClient []string
	// MaxResponseBody bounds the answer's body that is read and relayed (0:
	// DefaultMaxResponseBody); longer ones are cut.
	MaxResponseBody int
}

// HTTPClient checks requests with an HTTP authorization service, Envoy's HTTP ext_authz way:
// the check request has the client's method, PathPrefix + path (with query), the given
// headers and the buffered body; a 200 allows, a 5xx is a service failure, and any other
// answer is relayed to the client.
type HTTPClient struct {
	rt       http.RoundTripper
	owned    *http.Transport
	base     *url.URL
	basePath string // base URL path without its trailing "/", then PathPrefix
	host     string
	toUp     []string // HeadersToUpstream, canonical, in order
	policy   replyPolicy
}

var _ Client = (*HTTPClient)(nil)

// NewHTTP returns a client for cfg. It does not connect.
func NewHTTP(cfg HTTPConfig) (*HTTPClient, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("extauthz: service URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("extauthz: service URL %q: want http(s)://host[:port][/path]", cfg.URL)
	}
	if cfg.PathPrefix != "" && !strings.HasPrefix(cfg.PathPrefix, "/") {
		return nil, fmt.Errorf("extauthz: path prefix %q does not start with /", cfg.PathPrefix)
	}
	if strings.ContainsAny(cfg.PathPrefix, "?# \t\r\n") {
		return nil, fmt.Errorf("extauthz: path prefix %q: want a plain path", cfg.PathPrefix)
	}
	c := &HTTPClient{
		rt:       cfg.Transport,
		base:     &url.URL{Scheme: u.Scheme, Host: u.Host},
		basePath: strings.TrimSuffix(u.EscapedPath(), "/") + cfg.PathPrefix,
		host:     cfg.Host,
		policy:   newReplyPolicy(cfg.HeadersToUpstream, cfg.HeadersToClient, cfg.MaxResponseBody),
	}
	for _, n := range cfg.HeadersToUpstream {
		c.toUp = append(c.toUp, http.CanonicalHeaderKey(strings.TrimSpace(n)))
	}
	if c.rt == nil {
		dial := dialOrDefault(cfg.Dial)
		t := &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				conn, err := dial(ctx, addr)
				if err != nil {
					return nil, &dialError{err}
				}
				return conn, nil
			},
			TLSClientConfig:     cfg.TLS.Clone(),
			ForceAttemptHTTP2:   true,
			DisableCompression:  true,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		}
		if cfg.H2C && u.Scheme == "http" {
			t.Protocols = new(http.Protocols)
			t.Protocols.SetUnencryptedHTTP2(true)
		}
		c.rt, c.owned = t, t
	}
	return c, nil
}

// Close closes the idle connections of the transport NewHTTP built (not an injected one).
func (c *HTTPClient) Close() error {
	if c.owned != nil {
		c.owned.CloseIdleConnections()
	}
	return nil
}

// Check asks the service about r. The context's deadline is the check's timeout, covering
// the answer's body too.
func (c *HTTPClient) Check(ctx context.Context, r *Request) (*Decision, error) {
	req, err := c.newRequest(ctx, r)
	if err != nil {
		return nil, &Error{Outcome: OutcomeInvalidRequest, Err: err}
	}
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		return nil, httpError(ctx, err)
	}
	defer resp.Body.Close()
	// Read one byte past the limit to know whether the body was cut.
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(c.policy.maxBody)+1))
	if err != nil {
		return nil, httpError(ctx, err)
	}
	return c.decide(resp.StatusCode, resp.Header, body)
}

// newRequest builds the check request for r.
func (c *HTTPClient) newRequest(ctx context.Context, r *Request) (*http.Request, error) {
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	if method == http.MethodConnect {
		// net/http sends CONNECT with an authority target, not a path.
		return nil, errors.New("cannot check a CONNECT request over HTTP")
	}
	u, err := c.targetURL(r.Path)
	if err != nil {
		return nil, err
	}
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	// NewRequestWithContext validates the method and sets ContentLength and GetBody.
	req, err := http.NewRequestWithContext(ctx, method, c.base.String(), body)
	if err != nil {
		return nil, err
	}
	req.URL = u
	req.Host = c.host
	if req.Host == "" {
		req.Host = r.Host
	}
	req.Header = requestHeadersToSend(r.Headers)
	if _, ok := req.Header["User-Agent"]; !ok {
		req.Header["User-Agent"] = []string{""} // send none rather than Go's
	}
	// Only the gateway says whether the body is whole; a client's claim is dropped.
	req.Header.Del(partialBodyHeader)
	if r.Body != nil {
		req.Header.Set(partialBodyHeader, fmt.Sprint(r.BodyPartial))
	}
	return req, nil
}

// targetURL is the service URL for the client's request target p (path and query): the
// prefix and p's path exactly as they came, never re-encoded.
func (c *HTTPClient) targetURL(p string) (*url.URL, error) {
	if p == "" {
		p = "/"
	}
	for i := 0; i < len(p); i++ {
		if p[i] <= ' ' || p[i] == 0x7f || p[i] == '#' {
			return nil, fmt.Errorf("request target %q has a byte that cannot be sent", p)
		}
	}
	if p[0] != '/' && !(p == "*" && c.basePath == "") {
		return nil, fmt.Errorf("request target %q is not a path", p)
	}
	path, query, hasQuery := strings.Cut(p, "?")
	u := *c.base
	full := c.basePath + path
	if strings.HasPrefix(full, "//") {
		// An opaque "//x" would be sent as the absolute-form target "http://x": set the path
		// fields instead (RequestURI keeps "//x").
		dec, err := url.PathUnescape(full)
		if err != nil {
			return nil, fmt.Errorf("request path %q: %w", full, err)
		}
		u.Path, u.RawPath = dec, full
	} else {
		u.Opaque = full
	}
	u.RawQuery, u.ForceQuery = query, hasQuery && query == ""
	return &u, nil
}

// decide maps the service's answer: 200 allows, copying HeadersToUpstream onto the upstream
// request; a 5xx is a service failure (the answer kept in Error.Reply); anything else is a
// denial relayed to the client.
func (c *HTTPClient) decide(status int, h http.Header, body []byte) (*Decision, error) {
	if status == http.StatusOK {
		d := &Decision{Allowed: true}
		up := mutationCheck{allow: c.policy.upstream, refused: &d.Refused}
		for _, name := range c.toUp {
			for i, v := range h[name] {
				n, ok := up.name(name, &v)
				if !ok {
					break
				}
				a := AppendOrAdd
				if i == 0 {
					a = OverwriteOrAdd
				}
				d.Upstream = append(d.Upstream, HeaderMutation{Name: n, Value: v, Action: a})
			}
		}
		for _, v := range h[headersToRemoveHeader] {
			for _, name := range strings.Split(v, ",") {
				if name = strings.TrimSpace(name); name == "" {
					continue
				}
				if n, ok := up.name(name, nil); ok {
					d.UpstreamRemove = append(d.UpstreamRemove, n)
				}
			}
		}
		return d, nil
	}
	d := &Decision{Status: deniedStatus(status), HeadersToClient: make(http.Header, len(h))}
	d.Body, d.BodyTruncated = capBody(body, c.policy.maxBody)
	if len(d.Body) == 0 {
		d.Body = nil
	}
	cl := mutationCheck{allow: c.policy.client, refused: &d.Refused}
	for k, vs := range h {
		if strings.EqualFold(k, headersToRemoveHeader) {
			continue
		}
		for _, v := range vs {
			if n, ok := cl.name(k, &v); ok {
				d.HeadersToClient[n] = append(d.HeadersToClient[n], v)
			}
		}
	}
	if status >= 500 && status <= 599 {
		return nil, &Error{
			Outcome: OutcomeServiceError,
			Reply:   d,
			Err:     fmt.Errorf("service answered %d", status),
		}
	}
	return d, nil
}

// dialError marks a failure to connect to the service.
type dialError struct{ err error }

func (e *dialError) Error() string { return "dial: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// httpError classifies a failed round trip or body read.
func httpError(ctx context.Context, err error) *Error {
	if o, ok := ctxOutcome(ctx); ok {
		return &Error{Outcome: o, Err: err}
	}
	var (
		ne   net.Error
		de   *dialError
		oe   *net.OpError
		rhe  tls.RecordHeaderError
		cve  *tls.CertificateVerificationError
		alrt tls.AlertError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return &Error{Outcome: OutcomeTimeout, Err: err}
	case errors.Is(err, context.Canceled):
		return &Error{Outcome: OutcomeCanceled, Err: err}
	case errors.As(err, &rhe), errors.As(err, &cve), errors.As(err, &alrt):
		// Not speaking TLS, or not the server we trust: a configuration problem.
		return &Error{Outcome: OutcomeProtocolError, Err: err}
	case errors.As(err, &de), errors.As(err, &oe), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return &Error{Outcome: OutcomeUnavailable, Err: err}
	}
	// net/http reports malformed answers only as text.
	if s := err.Error(); strings.Contains(s, "malformed HTTP") || strings.Contains(s, "PROTOCOL_ERROR") {
		return &Error{Outcome: OutcomeProtocolError, Err: err}
	}
	return &Error{Outcome: OutcomeUnavailable, Err: err}
}
