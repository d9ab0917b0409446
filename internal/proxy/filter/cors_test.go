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
	// An origin that is not allowed gets an answer without CORS headers.
	r.Header.Set("Origin", "https://evil.example.com")
	_, rec, answered = run(t, corsRoute(), r, nil)
	if !answered || rec.Code != 204 || rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("refused preflight: %v %d %v", answered, rec.Code, rec.Header())
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
