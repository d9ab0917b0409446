package filter

import (
	"net/http/httptest"
	"testing"

	"apoxy.dev/apoxy/internal/ir"
)

func TestDirectResponse(t *testing.T) {
	rt := prefixRoute("/")
	rt.DirectResponse = &ir.DirectResponse{StatusCode: 418, Body: "short and stout", Headers: []ir.HeaderPair{{Name: "X-Pot", Value: "tea"}}}
	_, rec, answered := run(t, rt, httptest.NewRequest("GET", "/", nil), nil)
	if !answered || rec.Code != 418 || rec.Body.String() != "short and stout" || rec.Header().Get("X-Pot") != "tea" ||
		rec.Header().Get("Content-Type") != "text/plain; charset=utf-8" || rec.Header().Get("Content-Length") != "15" {
		t.Errorf("got %d %q %v", rec.Code, rec.Body, rec.Header())
	}
}

// A backendRef's DirectResponse answers for that backend only.
func TestDirectResponseOnBackend(t *testing.T) {
	rt := prefixRoute("/")
	rt.Backends = []ir.WeightedBackend{{Backend: "b", Weight: 1, Filters: []ir.Filter{{Type: ir.FilterDirectResponse, DirectResponse: &ir.DirectResponse{StatusCode: 503}}}}}
	c, err := CompileBackend(rt, &rt.Backends[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	x, rec := exchange(httptest.NewRequest("GET", "/", nil), rt)
	if !c.Run(x) || rec.Code != 503 {
		t.Errorf("backend chain: %d", rec.Code)
	}
}
