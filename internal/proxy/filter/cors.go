package filter

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"apoxy.dev/apoxy/internal/ir"
)

// cors is the one CORS engine: Gateway API's HTTPRoute CORS filter and an AuthPolicy's cors
// block both compile to it, and both run in the CORS phase, before authentication, so a
// preflight is never authenticated and never forwarded. A preflight from an allowed origin
// asking for allowed methods and headers is answered 204 with the CORS headers; any other
// preflight is answered 403 without them. An actual request from an allowed origin is
// decorated on its way back (the gateway's answer replaces the upstream's); one from any
// other origin passes without CORS headers, so the browser refuses it. `Vary: Origin` is
// added to every answer to a request that carries an Origin.
type cors struct {
	c *ir.CORS
	// origins are the compiled allowOrigins; anyOrigin: "*" is among them.
	origins   []originPattern
	anyOrigin bool
	// wildcard: any origin, answered with "*" (never with credentials, where the origin is
	// echoed instead).
	wildcard   bool
	anyMethod  bool
	anyHeader  bool
	methods    string // Access-Control-Allow-Methods unless "*"
	headers    string // Access-Control-Allow-Headers unless "*"
	allowedHdr map[string]bool
	expose     string
	maxAge     string
}

func newCORS(f *ir.Filter, _ *ir.Route, _ *Env) (Stage, error) {
	if f.CORS == nil {
		return nil, errors.New("cors is not set")
	}
	return compileCORS(f.CORS)
}

// newPolicyCORS builds the stage of a policy's cors block (nil when the route has none).
func newPolicyCORS(r *ir.Route, _ *Env) (Stage, error) {
	if r.CORS == nil {
		return nil, nil
	}
	return compileCORS(r.CORS)
}

func compileCORS(c *ir.CORS) (*cors, error) {
	s := &cors{c: c, anyMethod: slices.Contains(c.AllowMethods, "*"), anyHeader: slices.Contains(c.AllowHeaders, "*"),
		methods: strings.Join(c.AllowMethods, ", "), headers: strings.Join(c.AllowHeaders, ", "), expose: strings.Join(c.ExposeHeaders, ", "),
		allowedHdr: map[string]bool{}}
	for _, o := range c.AllowOrigins {
		if o == "*" {
			s.anyOrigin = true
			continue
		}
		p, ok := parseOriginPattern(o)
		if !ok {
			return nil, errors.New("cors: allowOrigins: " + strconv.Quote(o) + " is not scheme://host[:port] (with an optional leading *. label)")
		}
		s.origins = append(s.origins, p)
	}
	s.wildcard = s.anyOrigin && !c.AllowCredentials
	for _, h := range c.AllowHeaders {
		s.allowedHdr[strings.ToLower(h)] = true
	}
	if c.MaxAge > 0 {
		s.maxAge = strconv.Itoa(int(time.Duration(c.MaxAge) / time.Second))
	}
	return s, nil
}

// Contained: Serve works on the request's goroutine and keeps nothing of it.
func (*cors) Contained() {}

func (s *cors) Serve(x *Exchange) bool {
	r := x.Req
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	allowed := s.originAllowed(origin)
	if !preflight {
		// Decorated (allowed origins) or just varied (others) as the answer goes out.
		x.OnResponse(s)
		return false
	}
	h := x.W.Header()
	addVaryOrigin(h)
	if !allowed || !s.methodAllowed(r.Header.Get("Access-Control-Request-Method")) || !s.headersAllowed(r.Header.Values("Access-Control-Request-Headers")) {
		x.W.WriteHeader(http.StatusForbidden)
		return true
	}
	s.decorate(h, origin)
	methods := s.methods
	if s.anyMethod {
		methods = r.Header.Get("Access-Control-Request-Method")
	}
	if methods != "" {
		h.Set("Access-Control-Allow-Methods", methods)
	}
	hdrs := s.headers
	if s.anyHeader {
		hdrs = strings.Join(r.Header.Values("Access-Control-Request-Headers"), ", ")
	}
	if hdrs != "" {
		h.Set("Access-Control-Allow-Headers", hdrs)
	}
	if s.maxAge != "" {
		h.Set("Access-Control-Max-Age", s.maxAge)
	}
	x.W.WriteHeader(http.StatusNoContent)
	return true
}

// Response decorates the answer to an actual request from an allowed origin. The gateway's
// CORS policy is the one that holds: it replaces what the upstream said.
func (s *cors) Response(x *Exchange, h http.Header, _ int) {
	origin := x.Req.Header.Get("Origin")
	if origin == "" {
		return
	}
	addVaryOrigin(h)
	if s.originAllowed(origin) {
		s.decorate(h, origin)
	}
}

func (s *cors) decorate(h http.Header, origin string) {
	if s.wildcard {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
	}
	if s.c.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if s.expose != "" {
		h.Set("Access-Control-Expose-Headers", s.expose)
	}
}

func addVaryOrigin(h http.Header) {
	for _, v := range h.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); strings.EqualFold(f, "Origin") || f == "*" {
				return
			}
		}
	}
	h.Add("Vary", "Origin")
}

// methodAllowed: the CORS-safelisted methods always are (Fetch standard); others must be listed.
func (s *cors) methodAllowed(m string) bool {
	switch {
	case s.anyMethod, m == http.MethodGet, m == http.MethodHead, m == http.MethodPost:
		return true
	}
	return slices.Contains(s.c.AllowMethods, m)
}

// headersAllowed: every header a preflight asks for must be listed (case-insensitively).
func (s *cors) headersAllowed(values []string) bool {
	if s.anyHeader {
		return true
	}
	for _, v := range values {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.ToLower(strings.TrimSpace(name)); name != "" && !s.allowedHdr[name] {
				return false
			}
		}
	}
	return true
}

func (s *cors) originAllowed(origin string) bool {
	if s.anyOrigin {
		return true
	}
	o, ok := parseOrigin(origin)
	if !ok {
		return false
	}
	return slices.ContainsFunc(s.origins, func(p originPattern) bool { return p.matches(o) })
}

// origin is a serialised origin, normalised: lower-case scheme and host, and the scheme's
// default port (80 for http, 443 for https) as no port.
type origin struct {
	scheme, host, port string
}

func parseOrigin(s string) (origin, bool) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || scheme == "" || rest == "" || strings.ContainsAny(rest, "/?#@ ") {
		return origin{}, false
	}
	u, err := url.Parse(strings.ToLower(scheme) + "://" + rest)
	if err != nil || u.Hostname() == "" {
		return origin{}, false
	}
	o := origin{scheme: u.Scheme, host: strings.ToLower(u.Hostname()), port: u.Port()}
	if o.scheme == "http" && o.port == "80" || o.scheme == "https" && o.port == "443" {
		o.port = ""
	}
	return o, true
}

// originPattern is an allowed origin; a host starting with "*." matches one or more labels in
// front of the rest ("https://*.example.com" matches https://a.b.example.com, not
// https://example.com nor http://a.example.com).
type originPattern struct {
	origin
	suffix string // ".example.com" for "*.example.com"; "" for an exact host
}

func parseOriginPattern(s string) (originPattern, bool) {
	wild := strings.Contains(s, "://*.")
	if wild {
		s = strings.Replace(s, "://*.", "://wildcard.", 1)
	}
	o, ok := parseOrigin(s)
	if !ok {
		return originPattern{}, false
	}
	p := originPattern{origin: o}
	if wild {
		p.suffix = strings.TrimPrefix(o.host, "wildcard")
		p.host = ""
	}
	return p, true
}

func (p originPattern) matches(o origin) bool {
	if o.scheme != p.scheme || o.port != p.port {
		return false
	}
	if p.suffix == "" {
		return o.host == p.host
	}
	return len(o.host) > len(p.suffix) && strings.HasSuffix(o.host, p.suffix)
}
