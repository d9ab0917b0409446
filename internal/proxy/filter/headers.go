package filter

import (
	"errors"
	"net/http"

	"apoxy.dev/apoxy/internal/ir"
)

// requestHeaders is Gateway API's RequestHeaderModifier: it edits what the upstream sees.
type requestHeaders struct{ m *ir.HeaderModifier }

func newRequestHeaders(f *ir.Filter, _ *ir.Route) (Stage, error) {
	if f.RequestHeaders == nil {
		return nil, errors.New("requestHeaders is not set")
	}
	return &requestHeaders{f.RequestHeaders}, nil
}

func (s *requestHeaders) Serve(x *Exchange) bool {
	EditHeader(x.Req.Header, s.m)
	return false
}

// responseHeaders is Gateway API's ResponseHeaderModifier: it edits whatever the request is
// answered with, once the response head is known.
type responseHeaders struct{ m *ir.HeaderModifier }

func newResponseHeaders(f *ir.Filter, _ *ir.Route) (Stage, error) {
	if f.ResponseHeaders == nil {
		return nil, errors.New("responseHeaders is not set")
	}
	return &responseHeaders{f.ResponseHeaders}, nil
}

func (s *responseHeaders) Serve(x *Exchange) bool {
	x.OnResponse(s)
	return false
}

func (s *responseHeaders) Response(_ *Exchange, h http.Header, _ int) { EditHeader(h, s.m) }

// EditHeader applies a modifier: set, then add, then remove.
func EditHeader(h http.Header, m *ir.HeaderModifier) {
	for _, p := range m.Set {
		h.Set(p.Name, p.Value)
	}
	for _, p := range m.Add {
		h.Add(p.Name, p.Value)
	}
	for _, n := range m.Remove {
		h.Del(n)
	}
}
