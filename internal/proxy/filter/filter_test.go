package filter

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"apoxy.dev/apoxy/internal/ir"
)

// headWriter is what the proxy's response writer does for the chain: run the exchange's
// response hooks as the head is written.
type headWriter struct {
	*httptest.ResponseRecorder
	x *Exchange
}

func (w *headWriter) WriteHeader(code int) {
	w.ResponseRecorder.WriteHeader(w.x.ResponseHead(w.Header(), code))
}

// exchange readies an exchange for r on a route, answering into a recorder.
func exchange(r *http.Request, rt *ir.Route) (*Exchange, *httptest.ResponseRecorder) {
	rec := httptest.NewRecorder()
	x := &Exchange{Route: rt, Scheme: "http", Port: 8080}
	x.Begin(r, &headWriter{ResponseRecorder: rec, x: x})
	return x, rec
}

// run compiles a route and runs its chain on r. When no stage answers, it plays the upstream:
// it answers 200 with the given upstream headers, through the exchange's writer.
func run(t *testing.T, rt *ir.Route, r *http.Request, upstream http.Header) (*Exchange, *httptest.ResponseRecorder, bool) {
	t.Helper()
	c, err := Compile(rt, nil)
	if err != nil {
		t.Fatal(err)
	}
	x, rec := exchange(r, rt)
	answered := c.Run(x)
	if !answered {
		for k, v := range upstream {
			x.W.Header()[k] = v
		}
		x.W.WriteHeader(http.StatusOK)
		x.W.Write([]byte("from upstream"))
	}
	x.Finish()
	return x, rec, answered
}

func prefixRoute(path string, filters ...ir.Filter) *ir.Route {
	return &ir.Route{Name: "r", Match: ir.Match{PathType: ir.PathPrefix, Path: path}, Filters: filters}
}
