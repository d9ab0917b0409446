package filter

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"apoxy.dev/apoxy/internal/ir"
)

func corsRoute() *ir.Route {
	return prefixRoute("/", ir.Filter{Type: ir.FilterCORS, CORS: &ir.CORS{
		AllowOrigins: []string{"https://app.example.com", "https://*.example.org"}, AllowMethods: []string{"GET", "PUT"},
		AllowHeaders: []string{"x-token"}, ExposeHeaders: []string{"x-total"}, MaxAge: ir.Duration(600e9)}})
}

func TestCORSPreflight(t *testing.T) {
	r := httptest.NewRequest("OPTIONS", "/", nil)
	r.Header.Set("Origin", "https://a.example.org")
	r.Header.Set("Access-Control-Request-Method", "PUT")
	_, rec, answered := run(t, corsRoute(), r, nil)
	h := rec.Header()
	if !answered || rec.Code != 204 || h.Get("Access-Control-Allow-Origin") != "https://a.example.org" || h.Get("Access-Control-Allow-Methods") != "GET, PUT" ||
		h.Get("Access-Control-Allow-Headers") != "x-token" || h.Get("Access-Control-Max-Age") != "600" || h.Get("Vary") != "Origin" {
		t.Errorf("preflight: answered %v, %d %v", answered, rec.Code, h)
	}
	// An origin, method or header that is not allowed gets 403 without CORS headers.
	for _, c := range []struct{ origin, method, headers string }{
		{"https://evil.example.com", "PUT", ""},
		{"https://example.org", "PUT", ""},
		{"http://a.example.org", "PUT", ""},
		{"https://a.example.org", "DELETE", ""},
		{"https://a.example.org", "PUT", "x-token, x-other"},
	} {
		r.Header.Set("Origin", c.origin)
		r.Header.Set("Access-Control-Request-Method", c.method)
		r.Header.Set("Access-Control-Request-Headers", c.headers)
		_, rec, answered = run(t, corsRoute(), r, nil)
		if !answered || rec.Code != 403 || rec.Header().Get("Access-Control-Allow-Origin") != "" || rec.Header().Get("Access-Control-Allow-Methods") != "" ||
			rec.Header().Get("Vary") != "Origin" {
			t.Errorf("refused preflight %+v: %v %d %v", c, answered, rec.Code, rec.Header())
		}
	}
	// Safelisted methods need not be listed; listed headers match case-insensitively.
	r.Header.Set("Origin", "https://b.a.example.org:443")
	r.Header.Set("Access-Control-Request-Method", "POST")
	r.Header.Set("Access-Control-Request-Headers", "X-Token")
	if _, rec, _ = run(t, corsRoute(), r, nil); rec.Code != 204 || rec.Header().Get("Access-Control-Allow-Origin") != "https://b.a.example.org:443" {
		t.Errorf("allowed preflight: %d %v", rec.Code, rec.Header())
	}
}

// On an actual request the gateway's policy replaces what the upstream said, and the
// upstream's Vary is kept.
func TestCORSDecoratesTheUpstreamsAnswer(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Origin", "https://app.example.com")
	_, rec, answered := run(t, corsRoute(), r, http.Header{"Access-Control-Allow-Origin": {"*"}, "Vary": {"Accept-Encoding"}})
	h := rec.Header()
	if answered || h.Get("Access-Control-Allow-Origin") != "https://app.example.com" || h.Get("Access-Control-Expose-Headers") != "x-total" ||
		len(h.Values("Vary")) != 2 {
		t.Errorf("actual request: %v", h)
	}
	r.Header.Set("Origin", "https://evil.example.com")
	if _, rec, _ := run(t, corsRoute(), r, nil); rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("disallowed origin decorated: %v", rec.Header())
	}
}

// Origins match by scheme, host and port, with default ports equal to none and a "*." label
// matching one or more labels (design §5 case 98).
func TestCORSOriginPatterns(t *testing.T) {
	s, err := compileCORS(&ir.CORS{AllowOrigins: []string{"https://*.example.com", "http://app.example.net:8080", "https://exact.example.org:443"}})
	if err != nil {
		t.Fatal(err)
	}
	for origin, want := range map[string]bool{
		"https://a.example.com":          true,
		"https://a.b.example.com":        true,
		"https://A.Example.COM":          true,
		"https://a.example.com:443":      true,
		"https://example.com":            false,
		"http://a.example.com":           false,
		"https://a.example.com:8443":     false,
		"https://evilexample.com":        false,
		"https://a.example.com.evil.net": false,
		"http://app.example.net:8080":    true,
		"http://app.example.net":         false,
		"https://exact.example.org":      true,
		"https://x.exact.example.org":    false,
		"null":                           false,
		"https://a.example.com/path":     false,
		"":                               false,
	} {
		if got := s.originAllowed(origin); got != want {
			t.Errorf("%q: allowed %v, want %v", origin, got, want)
		}
	}
	if _, err := compileCORS(&ir.CORS{AllowOrigins: []string{"not an origin"}}); err == nil {
		t.Error("a malformed allowed origin compiled")
	}
}

// With credentials, "*" is never sent back: the origin is echoed.
func TestCORSCredentialsEchoOrigin(t *testing.T) {
	rt := prefixRoute("/", ir.Filter{Type: ir.FilterCORS, CORS: &ir.CORS{AllowOrigins: []string{"*"}, AllowCredentials: true}})
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Origin", "https://x.test")
	_, rec, _ := run(t, rt, r, nil)
	if h := rec.Header(); h.Get("Access-Control-Allow-Origin") != "https://x.test" || h.Get("Access-Control-Allow-Credentials") != "true" || h.Get("Vary") != "Origin" {
		t.Errorf("credentials: %v", h)
	}
}

func FuzzCORSOrigin(f *testing.F) {
	for _, s := range []string{"https://a.example.com", "http://x:80", "https://*.example.com", "null", "https://[::1]:443", "ftp://a"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, pattern, origin string) {
		s, err := compileCORS(&ir.CORS{AllowOrigins: []string{pattern}})
		if err != nil {
			return
		}
		if s.originAllowed(origin) && pattern != "*" {
			o, ok := parseOrigin(origin)
			if !ok {
				t.Fatalf("%q allowed %q, which does not parse", pattern, origin)
			}
			if p := s.origins[0]; o.scheme != p.scheme || o.port != p.port {
				t.Fatalf("%q allowed %q across scheme or port", pattern, origin)
			}
		}
	})
}
