package filter

import (
	"errors"
	"io"
	"strconv"

	"apoxy.dev/apoxy/internal/ir"
)

// directResponse answers with a fixed status, headers and body: a route's DirectResponse
// action, or a backendRef's DirectResponse extension for that backend's share of traffic.
type directResponse struct{ d *ir.DirectResponse }

func newDirectResponse(r *ir.Route, _ *Env) (Stage, error) {
	if r.DirectResponse == nil {
		return nil, nil
	}
	return &directResponse{r.DirectResponse}, nil
}

func newDirectResponseFilter(f *ir.Filter, _ *ir.Route, _ *Env) (Stage, error) {
	if f.DirectResponse == nil {
		return nil, errors.New("directResponse is not set")
	}
	return &directResponse{f.DirectResponse}, nil
}

// Contained: Serve works on the request's goroutine and keeps nothing of it.
func (*directResponse) Contained() {}

func (s *directResponse) Serve(x *Exchange) bool {
	d, h := s.d, x.W.Header()
	for _, hp := range d.Headers {
		h.Add(hp.Name, hp.Value)
	}
	if d.ContentType != "" {
		h.Set("Content-Type", d.ContentType)
	} else if d.Body != "" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	h.Set("Content-Length", strconv.Itoa(len(d.Body)))
	x.W.WriteHeader(d.StatusCode)
	io.WriteString(x.W, d.Body)
	return true
}
