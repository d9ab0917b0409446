package filter

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"apoxy.dev/apoxy/internal/ir"
)

// The IR promises that filters run in order: a mirror placed before a rewrite sees the path
// the client sent, one placed after sees the rewritten path.
func TestFiltersRunInOrder(t *testing.T) {
	ups, port, got := mirrorBackend(t)
	mirror := ir.Filter{Type: ir.FilterRequestMirror, Mirror: &ir.Mirror{Backend: "shadow", Port: port, Percent: 100}}
	rewrite := ir.Filter{Type: ir.FilterURLRewrite, URLRewrite: &ir.URLRewrite{Path: &ir.PathRewrite{FullPath: ptr("/rewritten")}}}
	for _, tc := range []struct {
		name    string
		filters []ir.Filter
		want    string
	}{
		{"mirror then rewrite", []ir.Filter{mirror, rewrite}, "/original"},
		{"rewrite then mirror", []ir.Filter{rewrite, mirror}, "/rewritten"},
	} {
		rt := prefixRoute("/", tc.filters...)
		c, _ := Compile(rt, nil)
		x, _ := exchange(httptest.NewRequest("GET", "/original", nil), rt)
		x.Upstreams = ups
		c.Run(x)
		if s := receive(t, got); s.path != tc.want {
			t.Errorf("%s: the mirror saw %s, want %s", tc.name, s.path, tc.want)
		}
		if x.Req.URL.Path != "/rewritten" {
			t.Errorf("%s: upstream path %s", tc.name, x.Req.URL.Path)
		}
	}
	// The same holds on the response side: hooks run in the order the filters are listed.
	set := ir.Filter{Type: ir.FilterResponseHeaders, ResponseHeaders: &ir.HeaderModifier{Set: []ir.HeaderPair{{Name: "X-A", Value: "1"}}}}
	del := ir.Filter{Type: ir.FilterResponseHeaders, ResponseHeaders: &ir.HeaderModifier{Remove: []string{"X-A"}}}
	if _, rec, _ := run(t, prefixRoute("/", set, del), httptest.NewRequest("GET", "/", nil), nil); rec.Header().Get("X-A") != "" {
		t.Errorf("set then remove left X-A: %v", rec.Header())
	}
	if _, rec, _ := run(t, prefixRoute("/", del, set), httptest.NewRequest("GET", "/", nil), nil); rec.Header().Get("X-A") != "1" {
		t.Errorf("remove then set lost X-A: %v", rec.Header())
	}
}

// trace is a test-only stage recording that it ran.
type trace struct {
	name string
	log  *[]string
}

func (s *trace) Serve(x *Exchange) bool { *s.log = append(*s.log, s.name); return false }

// A stage contributed to an earlier phase runs before the route's filters and the action,
// whatever order it was registered in.
func TestPhasesOrderTheChain(t *testing.T) {
	var log []string
	saved := routeStages
	t.Cleanup(func() { routeStages = saved })
	routeStages = append(slices.Clone(routeStages),
		RouteStage{Phase: PhaseRateLimitPostAuth, Name: "test-rate-limit", Build: func(*ir.Route, *Env) (Stage, error) { return &trace{"rate-limit", &log}, nil }},
		RouteStage{Phase: PhaseAuthentication, Name: "test-authn", Build: func(*ir.Route, *Env) (Stage, error) { return &trace{"authn", &log}, nil }},
	)
	rt := prefixRoute("/", ir.Filter{Type: ir.FilterRequestHeaders, RequestHeaders: &ir.HeaderModifier{Set: []ir.HeaderPair{{Name: "X-F", Value: "1"}}}})
	rt.DirectResponse = &ir.DirectResponse{StatusCode: 204}
	_, rec, answered := run(t, rt, httptest.NewRequest("GET", "/", nil), nil)
	if !slices.Equal(log, []string{"authn", "rate-limit"}) || !answered || rec.Code != http.StatusNoContent {
		t.Errorf("ran %v, answered %v with %d", log, answered, rec.Code)
	}
	if PhaseCORS.String() != "cors" || PhaseAction.String() != "action" || len(Phases()) != int(numPhases) {
		t.Errorf("phase names: %v", Phases())
	}
}

// Every IR filter type has a stage, so no filter the translator emits is dropped.
func TestEveryFilterTypeHasAStage(t *testing.T) {
	for _, ft := range []ir.FilterType{ir.FilterRequestHeaders, ir.FilterResponseHeaders, ir.FilterURLRewrite, ir.FilterRequestMirror,
		ir.FilterCORS, ir.FilterCompression, ir.FilterDirectResponse} {
		if _, ok := filters[ft]; !ok {
			t.Errorf("no stage for %s", ft)
		}
		// A filter whose settings are missing is refused, not served as a no-op.
		if _, err := Compile(prefixRoute("/", ir.Filter{Type: ft}), nil); err == nil {
			t.Errorf("%s without settings compiled", ft)
		}
	}
	if _, err := Compile(prefixRoute("/", ir.Filter{Type: "Nope"}), nil); err == nil {
		t.Error("an unknown filter type compiled")
	}
}

// A chain lets the proxy reuse a request's state only when every stage keeps nothing of the
// request: a mirror (whose goroutine reads the request after the exchange) must not.
func TestContainedChains(t *testing.T) {
	headers := ir.Filter{Type: ir.FilterRequestHeaders, RequestHeaders: &ir.HeaderModifier{Set: []ir.HeaderPair{{Name: "X-A", Value: "1"}}}}
	cors := ir.Filter{Type: ir.FilterCORS, CORS: &ir.CORS{AllowOrigins: []string{"https://a.example"}}}
	mirror := ir.Filter{Type: ir.FilterRequestMirror, Mirror: &ir.Mirror{Backend: "shadow", Port: 80, Percent: 100}}
	for _, tc := range []struct {
		name    string
		filters []ir.Filter
		want    bool
	}{
		{"none", nil, true},
		{"headers and CORS", []ir.Filter{headers, cors}, true},
		{"a mirror among them", []ir.Filter{headers, mirror, cors}, false},
	} {
		c, err := Compile(prefixRoute("/", tc.filters...), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Contained(); got != tc.want {
			t.Errorf("%s: Contained() = %v, want %v", tc.name, got, tc.want)
		}
	}
}
