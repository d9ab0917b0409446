package filter

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"apoxy.dev/apoxy/internal/ir"
)

// cors is Gateway API's CORS filter. It answers preflights itself and decorates the
// responses to actual requests from allowed origins. A preflight from an origin that is not
// allowed is answered too, without CORS headers, so the browser refuses the actual request.
type cors struct {
	c *ir.CORS
	// wildcard: any origin, answered with "*" (not with credentials).
	wildcard bool
	methods  string // Access-Control-Allow-Methods unless "*"
	headers  string // Access-Control-Allow-Headers unless "*"
	expose   string
	maxAge   string
}

func newCORS(f *ir.Filter, _ *ir.Route) (Stage, error) {
	c := f.CORS
	if c == nil {
		return nil, errors.New("cors is not set")
	}
	s := &cors{c: c, wildcard: slices.Contains(c.AllowOrigins, "*") && !c.AllowCredentials,
		methods: strings.Join(c.AllowMethods, ", "), headers: strings.Join(c.AllowHeaders, ", "), expose: strings.Join(c.ExposeHeaders, ", ")}
	if c.MaxAge > 0 {
		s.maxAge = strconv.Itoa(int(time.Duration(c.MaxAge) / time.Second))
	}
	return s, nil
}

func (s *cors) Serve(x *Exchange) bool {
	r := x.Req
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	if !originAllowed(s.c.AllowOrigins, origin) {
		if preflight {
			x.W.WriteHeader(http.StatusNoContent)
			return true
		}
		return false
	}
	if !preflight {
		x.OnResponse(s)
		return false
	}
	h := x.W.Header()
	s.decorate(h, origin)
	methods := s.methods
	if slices.Contains(s.c.AllowMethods, "*") {
		methods = r.Header.Get("Access-Control-Request-Method")
	}
	if methods != "" {
		h.Set("Access-Control-Allow-Methods", methods)
	}
	allowed := s.headers
	if slices.Contains(s.c.AllowHeaders, "*") {
		allowed = r.Header.Get("Access-Control-Request-Headers")
	}
	if allowed != "" {
		h.Set("Access-Control-Allow-Headers", allowed)
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
	if origin := x.Req.Header.Get("Origin"); origin != "" {
		s.decorate(h, origin)
	}
}

func (s *cors) decorate(h http.Header, origin string) {
	if s.wildcard {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
		if !slices.ContainsFunc(h.Values("Vary"), func(v string) bool { return strings.Contains(v, "Origin") }) {
			h.Add("Vary", "Origin")
		}
	}
	if s.c.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if s.expose != "" {
		h.Set("Access-Control-Expose-Headers", s.expose)
	}
}

// originAllowed matches an Origin against the allow list: "*", exact origins, and origins with
// a wildcard host label ("https://*.example.com").
func originAllowed(allowed []string, origin string) bool {
	for _, a := range allowed {
		if a == "*" || strings.EqualFold(a, origin) {
			return true
		}
		if i := strings.Index(a, "://*."); i >= 0 {
			scheme, suffix := a[:i+3], a[i+4:]
			if strings.HasPrefix(origin, scheme) && strings.HasSuffix(origin, suffix) && len(origin) > len(scheme)+len(suffix) {
				return true
			}
		}
	}
	return false
}
