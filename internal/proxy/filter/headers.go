package filter

import (
	"errors"
	"net/http"

	"apoxy.dev/apoxy/internal/ir"
)

// requestHeaders is Gateway API's RequestHeaderModifier: it edits what the upstream sees.
type requestHeaders struct{ e headerEdit }

func newRequestHeaders(f *ir.Filter, _ *ir.Route, _ *Env) (Stage, error) {
	if f.RequestHeaders == nil {
		return nil, errors.New("requestHeaders is not set")
	}
	return &requestHeaders{compileEdit(f.RequestHeaders)}, nil
}

// Contained: Serve works on the request's goroutine and keeps nothing of it.
func (*requestHeaders) Contained() {}

func (s *requestHeaders) Serve(x *Exchange) bool {
	s.e.apply(x.Req.Header)
	return false
}

// responseHeaders is Gateway API's ResponseHeaderModifier: it edits whatever the request is
// answered with, once the response head is known.
type responseHeaders struct{ e headerEdit }

func newResponseHeaders(f *ir.Filter, _ *ir.Route, _ *Env) (Stage, error) {
	if f.ResponseHeaders == nil {
		return nil, errors.New("responseHeaders is not set")
	}
	return &responseHeaders{compileEdit(f.ResponseHeaders)}, nil
}

// Contained: Serve works on the request's goroutine and keeps nothing of it.
func (*responseHeaders) Contained() {}

func (s *responseHeaders) Serve(x *Exchange) bool {
	x.OnResponse(s)
	return false
}

func (s *responseHeaders) Response(_ *Exchange, h http.Header, _ int) { s.e.apply(h) }

// headerEdit is a HeaderModifier with canonical names and value slices built once, so a set
// costs no allocation per request. The value slices are shared: header edits replace a key's
// slice or append to it (append copies a full slice), never write into one.
type headerEdit struct {
	set    []headerValue
	add    []headerValue
	remove []string
}

type headerValue struct {
	key  string
	vals []string // one value, len == cap
}

func compileEdit(m *ir.HeaderModifier) headerEdit {
	var e headerEdit
	for _, p := range m.Set {
		e.set = append(e.set, headerValue{http.CanonicalHeaderKey(p.Name), []string{p.Value}})
	}
	for _, p := range m.Add {
		e.add = append(e.add, headerValue{http.CanonicalHeaderKey(p.Name), []string{p.Value}})
	}
	for _, n := range m.Remove {
		e.remove = append(e.remove, http.CanonicalHeaderKey(n))
	}
	return e
}

func (e *headerEdit) apply(h http.Header) {
	for _, v := range e.set {
		h[v.key] = v.vals
	}
	for _, v := range e.add {
		if old := h[v.key]; len(old) > 0 {
			h[v.key] = append(old[:len(old):len(old)], v.vals[0])
		} else {
			h[v.key] = v.vals
		}
	}
	for _, k := range e.remove {
		delete(h, k)
	}
}
