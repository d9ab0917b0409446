package upstream

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/ir"
)

// testCluster starts a cluster for b (static IP endpoints, no health check unless b has one)
// and waits for its first resolution.
func testCluster(t *testing.T, opts Options, b *ir.Backend) *Cluster {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m := NewManager(opts)
	t.Cleanup(m.Close)
	c := m.Sync([]*ir.Backend{b}, map[string]int32{b.Name: 80})[b.Name]
	c.WaitResolved(context.Background())
	return c
}

func staticEndpoints(n int) []ir.Endpoint {
	eps := make([]ir.Endpoint, n)
	for i := range eps {
		eps[i] = ir.Endpoint{IP: "10.1.0." + strconv.Itoa(i+1)}
	}
	return eps
}

func hashBackend(lbType string, src *ir.HashSource) *ir.Backend {
	return &ir.Backend{Name: "p/ns/hash", Protocol: "plain", Endpoints: staticEndpoints(5),
		LoadBalancer: &ir.LoadBalancer{Type: lbType, Hash: src}}
}

// TestHashKeySources: each hash source reads its input; a missing or empty input gives no
// key; the same input gives the same key.
func TestHashKeySources(t *testing.T) {
	mk := func(src *ir.HashSource) *Cluster {
		c := &Cluster{spec: hashBackend(LBMaglev, src)}
		c.hash = newHashSource(src)
		return c
	}
	req := func(target string, hdr ...string) *http.Request {
		r := httptest.NewRequest("GET", target, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Add(hdr[i], hdr[i+1])
		}
		return r
	}
	header := mk(&ir.HashSource{Header: "x-user-id"})
	k1, set := header.HashKey(req("/", "X-User-Id", "alice"))
	k2, _ := header.HashKey(req("/a?b=c", "X-User-Id", "alice"))
	k3, _ := header.HashKey(req("/", "X-User-Id", "bob"))
	if !k1.Set || k1 != k2 || k1 == k3 || set != "" {
		t.Errorf("header keys: alice %v, alice again %v, bob %v, set-cookie %q", k1, k2, k3, set)
	}
	if k, _ := header.HashKey(req("/")); k.Set {
		t.Error("a request without the header has a key")
	}
	if k, _ := header.HashKey(req("/", "X-User-Id", "")); k.Set {
		t.Error("an empty header value gives a key")
	}
	if k, _ := header.HashKey(req("/", "X-User-Id", "a", "X-User-Id", "b")); !k.Set || k == StringKey("a") {
		t.Errorf("two header values: %v, want a key of both", k)
	}

	query := mk(&ir.HashSource{QueryParam: "tenant"})
	for _, tc := range []struct {
		target string
		want   string // "" = no key
	}{
		{"/?tenant=acme", "acme"},
		{"/?a=1&tenant=acme&tenant=other", "acme"},
		{"/?ten%61nt=ac%20me", "ac me"},
		{"/?tenant=ac+me", "ac me"},
		{"/?tenants=acme", ""},
		{"/?tenant=", ""},
		{"/", ""},
	} {
		k, _ := query.HashKey(req(tc.target))
		if tc.want == "" && k.Set || tc.want != "" && k != StringKey(tc.want) {
			t.Errorf("query %s: key %v, want that of %q", tc.target, k, tc.want)
		}
	}

	src := mk(&ir.HashSource{SourceIP: true})
	a := req("/")
	a.RemoteAddr = "192.0.2.7:5000"
	b := req("/")
	b.RemoteAddr = "[::ffff:192.0.2.7]:6000"
	ka, _ := src.HashKey(a)
	kb, _ := src.HashKey(b)
	if !ka.Set || ka != kb {
		t.Errorf("source IP keys %v and %v, want equal (same client, other port, mapped form)", ka, kb)
	}
	if k := src.ConnKey(netip.MustParseAddr("192.0.2.7")); k != ka {
		t.Errorf("ConnKey %v, want the request's %v", k, ka)
	}

	cookie := mk(&ir.HashSource{Cookie: &ir.HashCookie{Name: "srv"}})
	if k, set := cookie.HashKey(req("/", "Cookie", `a=1; srv="abc"; b=2`)); k != StringKey("abc") || set != "" {
		t.Errorf("cookie key %v set %q, want that of abc and no Set-Cookie", k, set)
	}
	if k, set := cookie.HashKey(req("/", "Cookie", "a=1", "Cookie", "srv=abc")); k != StringKey("abc") || set != "" {
		t.Errorf("cookie in a second Cookie line: key %v set %q", k, set)
	}

	none := &Cluster{spec: &ir.Backend{Name: "x", LoadBalancer: &ir.LoadBalancer{Type: LBRoundRobin}}}
	if k, set := none.HashKey(req("/", "Cookie", "srv=abc")); k.Set || set != "" {
		t.Errorf("a cluster that does not hash gave key %v, Set-Cookie %q", k, set)
	}
}

// TestHashKeyCookieSetAndStick (design §5.54): a request without the affinity cookie gets one
// (with the policy's attributes), its key is the new cookie's, and requests carrying the
// cookie then always reach the endpoint the first one did.
func TestHashKeyCookieSetAndStick(t *testing.T) {
	for _, lb := range []string{LBRingHash, LBMaglev} {
		hc := &ir.HashCookie{Name: "cart-affinity", TTL: ir.Duration(time.Hour), Path: "/shop", SameSite: "Lax", Secure: true}
		c := testCluster(t, Options{}, hashBackend(lb, &ir.HashSource{Cookie: hc}))
		key, set := c.HashKey(httptest.NewRequest("GET", "/shop/cart", nil))
		if !key.Set || set == "" {
			t.Fatalf("%s: a request without the cookie: key %v, Set-Cookie %q", lb, key, set)
		}
		name, rest, _ := strings.Cut(set, "=")
		value, attrs, _ := strings.Cut(rest, ";")
		if name != "cart-affinity" || len(value) != 16 || attrs != " Path=/shop; Max-Age=3600; SameSite=Lax; Secure; HttpOnly" {
			t.Fatalf("%s: Set-Cookie %q", lb, set)
		}
		first, err := c.PickKey(nil, key)
		if err != nil {
			t.Fatal(err)
		}
		for range 50 {
			r := httptest.NewRequest("GET", "/shop/other", nil)
			r.Header.Set("Cookie", "theme=dark; cart-affinity="+value)
			k, set := c.HashKey(r)
			if set != "" {
				t.Fatalf("%s: a request with the cookie was given another: %q", lb, set)
			}
			if a, _ := c.PickKey(nil, k); a != first {
				t.Fatalf("%s: with the cookie the request went to %s, the first to %s", lb, a.IP, first.IP)
			}
		}
		// A session cookie (no TTL) and the default path.
		_, set = newAffinityCookie(&ir.HashCookie{Name: "s"})
		if _, attrs, _ := strings.Cut(set, ";"); attrs != " Path=/; HttpOnly" {
			t.Errorf("session cookie %q", set)
		}
	}
}

// TestHashKeyMissingBalances (design §5.55): hashing on a header requests lack balances them
// over the endpoints instead of pinning them to one.
func TestHashKeyMissingBalances(t *testing.T) {
	c := testCluster(t, Options{}, hashBackend(LBRingHash, &ir.HashSource{Header: "x-user-id"}))
	seen := map[string]bool{}
	for range 200 {
		k, _ := c.HashKey(httptest.NewRequest("GET", "/", nil))
		a, err := c.PickKey(nil, k)
		if err != nil {
			t.Fatal(err)
		}
		seen[a.IP.String()] = true
	}
	if len(seen) < 4 {
		t.Errorf("requests without the header reached %d of 5 endpoints, want them balanced", len(seen))
	}
}

// TestPickKeyRetryAvoidsTried: a retry of a keyed request goes to another endpoint (the key is
// rehashed), the same one every time.
func TestPickKeyRetryAvoidsTried(t *testing.T) {
	c := testCluster(t, Options{}, hashBackend(LBMaglev, &ir.HashSource{Header: "x"}))
	key := StringKey("alice")
	first, _ := c.PickKey(nil, key)
	second, _ := c.PickKey([]netip.Addr{first.IP}, key)
	if second == first {
		t.Fatalf("the retry went to the tried endpoint %s", first.IP)
	}
	for range 20 {
		if a, _ := c.PickKey([]netip.Addr{first.IP}, key); a != second {
			t.Fatalf("retries went to %s and %s", second.IP, a.IP)
		}
	}
}

// TestHashKeyDoesNotAllocate: reading the header, query parameter, source IP or present
// cookie allocates nothing.
func TestHashKeyDoesNotAllocate(t *testing.T) {
	for name, tc := range map[string]struct {
		src *ir.HashSource
		hdr string
		val string
		url string
	}{
		"header":   {&ir.HashSource{Header: "x-user-id"}, "X-User-Id", "alice", "/"},
		"query":    {&ir.HashSource{QueryParam: "tenant"}, "", "", "/?a=b&tenant=acme"},
		"sourceIP": {&ir.HashSource{SourceIP: true}, "", "", "/"},
		"cookie":   {&ir.HashSource{Cookie: &ir.HashCookie{Name: "srv"}}, "Cookie", "a=b; srv=0123456789abcdef", "/"},
	} {
		c := &Cluster{hash: newHashSource(tc.src)}
		r := httptest.NewRequest("GET", tc.url, nil)
		if tc.hdr != "" {
			r.Header.Set(tc.hdr, tc.val)
		}
		if n := testing.AllocsPerRun(1000, func() {
			if k, _ := c.HashKey(r); !k.Set {
				t.Fatal("no key")
			}
		}); n != 0 {
			t.Errorf("%s: %.1f allocations per HashKey", name, n)
		}
	}
}

// BenchmarkHashKey measures reading a request's hash key.
func BenchmarkHashKey(b *testing.B) {
	for _, tc := range []struct {
		name string
		src  *ir.HashSource
		hdr  string
		val  string
	}{
		{"header", &ir.HashSource{Header: "x-user-id"}, "X-User-Id", "alice"},
		{"cookie", &ir.HashSource{Cookie: &ir.HashCookie{Name: "srv"}}, "Cookie", "a=b; srv=0123456789abcdef"},
		{"sourceIP", &ir.HashSource{SourceIP: true}, "", ""},
	} {
		c := &Cluster{hash: newHashSource(tc.src)}
		r := httptest.NewRequest("GET", "/", nil)
		if tc.hdr != "" {
			r.Header.Set(tc.hdr, tc.val)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.HashKey(r)
			}
		})
	}
}
