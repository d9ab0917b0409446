package filter

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"apoxy.dev/apoxy/internal/ir"
)

func TestRequestHeaders(t *testing.T) {
	r := httptest.NewRequest("GET", "http://a.example.com/", nil)
	r.Header.Set("X-Drop", "1")
	r.Header.Set("X-Add", "client")
	rt := prefixRoute("/", ir.Filter{Type: ir.FilterRequestHeaders, RequestHeaders: &ir.HeaderModifier{
		Set: []ir.HeaderPair{{Name: "x-set", Value: "a"}}, Add: []ir.HeaderPair{{Name: "x-add", Value: "b"}}, Remove: []string{"x-drop"}}})
	x, _, answered := run(t, rt, r, nil)
	if answered {
		t.Fatal("a header modifier answered")
	}
	h := x.Req.Header
	if h.Get("X-Set") != "a" || len(h.Values("X-Add")) != 2 || h.Get("X-Drop") != "" {
		t.Errorf("upstream headers %v", h)
	}
}

func TestResponseHeadersEditEveryAnswer(t *testing.T) {
	mod := ir.Filter{Type: ir.FilterResponseHeaders, ResponseHeaders: &ir.HeaderModifier{
		Set: []ir.HeaderPair{{Name: "x-resp", Value: "gw"}}, Remove: []string{"server"}}}
	// A forwarded response: the upstream's head is edited.
	_, rec, _ := run(t, prefixRoute("/", mod), httptest.NewRequest("GET", "/", nil), http.Header{"X-Resp": {"up"}, "Server": {"up"}})
	if rec.Header().Get("X-Resp") != "gw" || rec.Header().Get("Server") != "" {
		t.Errorf("forwarded response head %v", rec.Header())
	}
	// A direct response: the same hook edits it.
	rt := prefixRoute("/", mod)
	rt.DirectResponse = &ir.DirectResponse{StatusCode: 201, Headers: []ir.HeaderPair{{Name: "Server", Value: "x"}}}
	_, rec, answered := run(t, rt, httptest.NewRequest("GET", "/", nil), nil)
	if !answered || rec.Code != 201 || rec.Header().Get("X-Resp") != "gw" || rec.Header().Get("Server") != "" {
		t.Errorf("direct response %d head %v", rec.Code, rec.Header())
	}
}
