package route

import (
	"fmt"
	"net/http"
	"runtime"
	"testing"

	"apoxy.dev/apoxy/internal/ir"
)

func r(name string, pt ir.PathMatchType, path string, opts ...func(*ir.Route)) *ir.Route {
	rt := &ir.Route{Name: name, Match: ir.Match{PathType: pt, Path: path}}
	for _, o := range opts {
		o(rt)
	}
	return rt
}

func method(m string) func(*ir.Route) { return func(r *ir.Route) { r.Match.Method = m } }
func header(n, v string, re bool) func(*ir.Route) {
	return func(r *ir.Route) {
		t := ir.MatchExact
		if re {
			t = ir.MatchRegularExpression
		}
		r.Match.Headers = append(r.Match.Headers, ir.StringMatch{Name: n, Type: t, Value: v})
	}
}
func query(n, v string) func(*ir.Route) {
	return func(r *ir.Route) {
		r.Match.QueryParams = append(r.Match.QueryParams, ir.StringMatch{Name: n, Type: ir.MatchExact, Value: v})
	}
}

func compile(t testing.TB, vhs ...*ir.VirtualHost) *Table[string] {
	t.Helper()
	tab, err := Compile(&ir.Listener{Name: ":80", Port: 80, VirtualHosts: vhs}, func(r *ir.Route) (string, error) { return r.Name, nil })
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestMatch(t *testing.T) {
	// Routes are listed in precedence order, as the translator emits them.
	tab := compile(t,
		&ir.VirtualHost{ListenerHostname: "exact.example.com", Hostname: "exact.example.com", Routes: []*ir.Route{
			r("exact-listener", ir.PathPrefix, "/"),
		}},
		&ir.VirtualHost{ListenerHostname: "*.example.com", Hostname: "api.example.com", Routes: []*ir.Route{
			r("exact-v1", ir.PathExact, "/v1"),
			r("regex-items", ir.PathRegularExpression, "/v[0-9]+/items"),
			r("post-v1", ir.PathPrefix, "/v1", method("POST")),
			r("v1-header", ir.PathPrefix, "/v1/", header("X-Version", "2", false)),
			r("v1-query", ir.PathPrefix, "/v1", query("debug", "on x")),
			r("v1", ir.PathPrefix, "/v1"),
		}},
		&ir.VirtualHost{ListenerHostname: "*.example.com", Hostname: "*.example.com", Routes: []*ir.Route{
			r("wild-admin", ir.PathPrefix, "/admin"),
			r("wild-regex-header", ir.PathPrefix, "/", header("x-env", "^(prod|stage)$", true)),
		}},
		&ir.VirtualHost{ListenerHostname: "", Hostname: "*", Routes: []*ir.Route{
			r("catch-all", ir.PathPrefix, "/"),
		}},
	)
	tests := []struct {
		host, method, path, query string
		header                    http.Header
		want                      string
	}{
		{"api.example.com", "GET", "/v1", "", nil, "exact-v1"},
		{"api.example.com", "GET", "/v1/", "", nil, "v1"},
		{"api.example.com", "GET", "/v1/users", "", nil, "v1"},
		{"api.example.com", "GET", "/v12", "", nil, "wild-regex-header-miss"},
		{"api.example.com", "GET", "/v2/items", "", nil, "regex-items"},
		{"api.example.com", "POST", "/v1/x", "", nil, "post-v1"},
		{"api.example.com", "GET", "/v1/x", "", http.Header{"X-Version": {"2"}}, "v1-header"},
		{"api.example.com", "GET", "/v1/x", "a=b&debug=on%20x", nil, "v1-query"},
		{"api.example.com", "GET", "/v1/x", "debug=off", nil, "v1"},
		// Falls through to the wildcard virtual host of the same listener.
		{"api.example.com", "GET", "/admin/x", "", nil, "wild-admin"},
		{"other.example.com", "GET", "/", "", http.Header{"X-Env": {"stage"}}, "wild-regex-header"},
		{"other.example.com", "GET", "/", "", http.Header{"X-Env": {"dev"}}, ""},
		// A more specific listener does not fall through to another listener's routes.
		{"exact.example.com", "GET", "/admin", "", nil, "exact-listener"},
		{"example.com", "GET", "/admin", "", nil, "catch-all"},
		{"elsewhere.org", "GET", "/", "", nil, "catch-all"},
		// Prefixes match whole segments only.
		{"api.example.com", "GET", "/v1x", "", nil, "wild-regex-header-miss"},
		{"a.b.example.com", "GET", "/admin", "", nil, "wild-admin"},
	}
	for _, tc := range tests {
		name := fmt.Sprintf("%s %s %s?%s %v", tc.host, tc.method, tc.path, tc.query, tc.header)
		t.Run(name, func(t *testing.T) {
			h := tc.header
			if h == nil {
				h = http.Header{}
			}
			e := tab.Match(&Request{Host: tc.host, Method: tc.method, Path: tc.path, Header: h, RawQuery: tc.query})
			got := ""
			if e != nil {
				got = e.Value
			}
			want := tc.want
			if want == "wild-regex-header-miss" {
				want = "" // the wildcard host's "/" route needs the x-env header
			}
			if got != want {
				t.Errorf("matched %q, want %q", got, want)
			}
		})
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	tab := benchTable(t, 1000)
	req := &Request{Host: "h500.example.com", Method: "GET", Path: "/api/r500/items/42", Header: http.Header{"X-Tenant": {"a"}}, RawQuery: "page=2"}
	if e := tab.Match(req); e == nil {
		t.Fatal("no match")
	}
	if n := testing.AllocsPerRun(100, func() { tab.Match(req) }); n != 0 {
		t.Errorf("Match allocates %.1f times per call", n)
	}
}

// benchTable has n hosts, each with five routes of every kind (exact, prefix with header and
// query conditions, method, prefix, catch-all).
func benchTable(t testing.TB, n int) *Table[string] {
	return compile(t, benchHosts(n)...)
}

func benchHosts(n int) []*ir.VirtualHost {
	var vhs []*ir.VirtualHost
	for i := 0; i < n; i++ {
		post := r("post", ir.PathPrefix, fmt.Sprintf("/api/r%d/items", i))
		post.Match.Method = "POST"
		vhs = append(vhs, &ir.VirtualHost{Hostname: fmt.Sprintf("h%d.example.com", i), Routes: []*ir.Route{
			r("exact", ir.PathExact, fmt.Sprintf("/api/r%d", i)),
			r("hdr", ir.PathPrefix, fmt.Sprintf("/api/r%d/items", i), header("x-tenant", "a", false), query("page", "2")),
			post,
			r("prefix", ir.PathPrefix, fmt.Sprintf("/api/r%d", i)),
			r("root", ir.PathPrefix, "/"),
		}})
	}
	return vhs
}

// benchSizes are the route counts the issue asks for (five routes per host).
var benchSizes = []int{10, 1000, 10000, 100000}

func BenchmarkMatch(b *testing.B) {
	for _, routes := range benchSizes {
		n := routes / 5
		b.Run(fmt.Sprintf("routes=%d", routes), func(b *testing.B) {
			tab := benchTable(b, n)
			req := &Request{Host: fmt.Sprintf("h%d.example.com", n/2), Method: "GET", Path: fmt.Sprintf("/api/r%d/items/42", n/2), Header: http.Header{"X-Tenant": {"a"}}, RawQuery: "page=2"}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if tab.Match(req) == nil {
					b.Fatal("no match")
				}
			}
		})
	}
}

// BenchmarkCompile is the time and memory to build a listener's route table; B/op is the
// garbage of one build, heap-MiB what the built table keeps.
func BenchmarkCompile(b *testing.B) {
	for _, routes := range benchSizes {
		b.Run(fmt.Sprintf("routes=%d", routes), func(b *testing.B) {
			l := &ir.Listener{Name: ":80", Port: 80, VirtualHosts: benchHosts(routes / 5)}
			var tab *Table[string]
			var before, after runtime.MemStats
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				tab = nil
				runtime.GC()
				runtime.ReadMemStats(&before)
				b.StartTimer()
				var err error
				if tab, err = Compile(l, func(r *ir.Route) (string, error) { return r.Name, nil }); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "heap-MiB")
			runtime.KeepAlive(tab)
		})
	}
}

// FuzzMatch: any host/path/query against a table never panics, and a match's path really
// matches the request under Gateway API rules.
func FuzzMatch(f *testing.F) {
	tab := compile(f,
		&ir.VirtualHost{Hostname: "*.example.com", Routes: []*ir.Route{
			r("exact", ir.PathExact, "/v1"),
			r("re", ir.PathRegularExpression, "/v[0-9]+/.*"),
			r("q", ir.PathPrefix, "/q", query("k", "v")),
			r("p", ir.PathPrefix, "/a/b/"),
		}},
		&ir.VirtualHost{Hostname: "*", Routes: []*ir.Route{r("root", ir.PathPrefix, "/")}},
	)
	f.Add("a.example.com", "/v1", "k=v")
	f.Add("example.com", "/a/b", "")
	f.Add("x.example.com", "/a/bc", "k=%zz")
	f.Fuzz(func(t *testing.T, host, path, rawQuery string) {
		e := tab.Match(&Request{Host: host, Method: "GET", Path: path, Header: http.Header{}, RawQuery: rawQuery})
		if e == nil {
			return
		}
		switch e.Value {
		case "exact":
			if path != "/v1" {
				t.Fatalf("exact matched %q", path)
			}
		case "p":
			if path != "/a/b" && (len(path) < 5 || path[:5] != "/a/b/") {
				t.Fatalf("prefix /a/b/ matched %q", path)
			}
		}
	})
}

// TestSameListener mirrors the upstream misdirected-request cases: hosts pick
// the most specific listener hostname, and only hosts that land on different
// listeners differ.
func TestSameListener(t *testing.T) {
	tab := compile(t,
		&ir.VirtualHost{ListenerHostname: "", Hostname: "example.org", Routes: []*ir.Route{r("any", ir.PathPrefix, "/")}},
		&ir.VirtualHost{ListenerHostname: "second-example.org", Hostname: "second-example.org", Routes: []*ir.Route{r("second", ir.PathPrefix, "/")}},
		&ir.VirtualHost{ListenerHostname: "*.wildcard.org", Hostname: "*.wildcard.org", Routes: []*ir.Route{r("wild", ir.PathPrefix, "/")}},
		&ir.VirtualHost{ListenerHostname: "fourth-example.wildcard.org", Hostname: "fourth-example.wildcard.org", Routes: []*ir.Route{r("fourth", ir.PathPrefix, "/")}},
	)
	for _, c := range []struct {
		sni, host string
		same      bool
	}{
		{"example.org", "example.org", true},
		{"example.org", "unknown-example.org", true}, // both the catch-all listener
		{"example.org", "second-example.org", false},
		{"second-example.org", "unknown-example.org", false},
		{"third-example.wildcard.org", "fith-example.wildcard.org", true},
		{"third-example.wildcard.org", "fourth-example.wildcard.org", false},
		{"fourth-example.wildcard.org", "fith-example.wildcard.org", false},
		{"unknown-example.org", "example.org", true},
	} {
		if got := tab.SameListener(c.sni, c.host); got != c.same {
			t.Errorf("SameListener(%q, %q) = %v, want %v", c.sni, c.host, got, c.same)
		}
	}
}
