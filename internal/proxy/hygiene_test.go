package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/ir"
)

// seen is what the header-echo backend reports about the request it got.
type seen struct {
	Route  string              `json:"route"`
	Target string              `json:"target"`
	Header map[string][]string `json:"header"`
}

// hygieneServer serves routes like the probe's: /admin answers 403 at the gateway, /public and
// / go to a backend that echoes the request target and headers (labelled with the route).
func hygieneServer(t *testing.T, opts Options) string {
	t.Helper()
	backend := func(name string) (string, int32) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			json.NewEncoder(w).Encode(seen{Route: name, Target: r.RequestURI, Header: r.Header})
		}))
		t.Cleanup(srv.Close)
		ap := netip.MustParseAddrPort(srv.Listener.Addr().String())
		return ap.Addr().String(), int32(ap.Port())
	}
	pubIP, pubPort := backend("public")
	rootIP, rootPort := backend("root")
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	opts.DrainTimeout = time.Second
	s := New(opts)
	t.Cleanup(s.Close)
	admin := &ir.Route{Name: "admin", Match: ir.Match{PathType: ir.PathPrefix, Path: "/admin"}, DirectResponse: &ir.DirectResponse{StatusCode: 403, Body: "denied"}}
	public := testRoute("public", "/public", ir.WeightedBackend{Backend: "ns/public", Port: pubPort, Weight: 1})
	public.Filters = append(public.Filters, ir.Filter{Type: ir.FilterRequestHeaders, RequestHeaders: &ir.HeaderModifier{Set: []ir.HeaderPair{{Name: "X-Internal-Auth", Value: "gateway"}}}})
	redirect := &ir.Route{Name: "redir", Match: ir.Match{PathType: ir.PathPrefix, Path: "/redir"}, Redirect: &ir.Redirect{Scheme: "https", StatusCode: 302}}
	root := testRoute("root", "/", ir.WeightedBackend{Backend: "ns/root", Port: rootPort, Weight: 1})
	snap := &ir.Snapshot{
		Listeners: []*ir.Listener{{Name: "127.0.0.1:0", Address: "127.0.0.1", Port: 1, Protocol: ir.ProtocolHTTP,
			VirtualHosts: []*ir.VirtualHost{{Hostname: "*", Routes: []*ir.Route{admin, public, redirect, root}}}}},
		Backends: []*ir.Backend{
			{Name: "ns/public", Protocol: "plain", Endpoints: []ir.Endpoint{{IP: pubIP}}},
			{Name: "ns/root", Protocol: "plain", Endpoints: []ir.Endpoint{{IP: rootIP}}},
		},
	}
	if err := s.Apply("p", snap); err != nil {
		t.Fatal(err)
	}
	waitResolved(t, s, "ns/public", "ns/root")
	return s.Addrs()["127.0.0.1:0"]
}

// rawGet sends a request target exactly as given over HTTP/1.1 and returns the status and
// what the backend saw (zero when the gateway answered itself).
func rawGet(t *testing.T, addr, target string, headers ...string) (int, seen, http.Header) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	req := "GET " + target + " HTTP/1.1\r\nHost: files.test\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	var s seen
	body, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(body, &s)
	return resp.StatusCode, s, resp.Header
}

// h2cGet sends the same target over prior-knowledge HTTP/2.
func h2cGet(t *testing.T, addr, target string) (int, seen) {
	t.Helper()
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: p}, Timeout: 5 * time.Second}
	path, query, _ := strings.Cut(target, "?")
	u := &url.URL{Scheme: "http", Host: addr, Opaque: path, RawQuery: query}
	req := (&http.Request{Method: "GET", URL: u, Header: http.Header{}, Host: "files.test"}).WithContext(context.Background())
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("h2c GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	var s seen
	body, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(body, &s)
	return resp.StatusCode, s
}

// TestPathNormalization: the path is normalised before routing and what goes upstream is the
// normalised path, so no spelling of /admin reaches a backend past the route that denies it
// (finding F1), over HTTP/1.1 and h2c alike.
func TestPathNormalization(t *testing.T) {
	addr := hygieneServer(t, Options{})
	cases := []struct {
		target string
		code   int
		route  string // backend route that served it ("" when the gateway answered)
		up     string // request target the backend saw
	}{
		{"/public/x", 200, "public", "/public/x"},
		{"/admin", 403, "", ""},
		{"/admin/secret.txt", 403, "", ""},
		{"/public/../admin/secret.txt", 403, "", ""},
		{"//admin/secret.txt", 403, "", ""},
		{"///admin", 403, "", ""},
		{"/./admin/secret.txt", 403, "", ""},
		{"/public/%2e%2e/admin/secret.txt", 403, "", ""},
		{"/public/%2E%2E/admin", 403, "", ""},
		{"/public/%2e%2E/admin", 403, "", ""},
		{"/public/.%2e/admin", 403, "", ""},
		{"/public/%2e./admin", 403, "", ""},
		{"/%2e%2e/admin", 403, "", ""},
		{"/%61dmin", 403, "", ""},
		{"/a/b/../../admin", 403, "", ""},
		{"/public/..;/admin", 403, "", ""},
		{"/public%2F..%2Fadmin/secret.txt", 400, "", ""},
		{"/public%2f..%2fadmin", 400, "", ""},
		{"/public%5C..%5Cadmin", 400, "", ""},
		{`/public\..\admin`, 400, "", ""},
		{"/public/%00", 400, "", ""},
		{"/public/%zz", 400, "", ""},
		{"/ADMIN", 200, "root", "/ADMIN"},
		{"/Admin/x", 200, "root", "/Admin/x"},
		{"/public/./x", 200, "public", "/public/x"},
		{"/public//x", 200, "public", "/public/x"},
		{"/public///x//y", 200, "public", "/public/x/y"},
		{"/public/a/../b", 200, "public", "/public/b"},
		{"/public/a/..", 200, "public", "/public/"},
		{"/public/x/./../y", 200, "public", "/public/y"},
		{"/public/%2e/x", 200, "public", "/public/x"},
		{"/public/..", 200, "root", "/"},
		{"/..", 200, "root", "/"},
		{"/../../etc/passwd", 200, "root", "/etc/passwd"},
		{"/admin/../public/x", 200, "public", "/public/x"},
		{"/public/%252e%252e/admin", 200, "public", "/public/%252e%252e/admin"},
		{"/public/...", 200, "public", "/public/..."},
		{"/public/.hidden", 200, "public", "/public/.hidden"},
		{"/public;x=1/y", 200, "root", "/public;x=1/y"},
		{"/public/a;b/c", 200, "public", "/public/a;b/c"},
		{"/public/%7Euser", 200, "public", "/public/~user"},
		{"/public/%3f", 200, "public", "/public/%3F"},
		{"/public/a%20b", 200, "public", "/public/a%20b"},
		{"/public/caf%C3%A9", 200, "public", "/public/caf%C3%A9"},
		{"/public?x=../admin", 200, "public", "/public?x=../admin"},
		{"/public/x?a=%2e%2e&b=//c", 200, "public", "/public/x?a=%2e%2e&b=//c"},
		{"/public/%41%42", 200, "public", "/public/AB"},
	}
	for _, c := range cases {
		code, s, _ := rawGet(t, addr, c.target)
		if code != c.code || s.Route != c.route || s.Target != c.up {
			t.Errorf("HTTP/1.1 %s: %d route %q upstream %q; want %d %q %q", c.target, code, s.Route, s.Target, c.code, c.route, c.up)
		}
		if strings.ContainsAny(c.target, `\`) || strings.Contains(c.target, "%zz") || strings.HasPrefix(c.target, "//") {
			continue // not a valid HTTP/2 :path for Go's client
		}
		code, s = h2cGet(t, addr, c.target)
		if code != c.code || s.Route != c.route || s.Target != c.up {
			t.Errorf("h2c %s: %d route %q upstream %q; want %d %q %q", c.target, code, s.Route, s.Target, c.code, c.route, c.up)
		}
	}
}

// TestClientCannotDeleteGatewayHeaders: hop-by-hop removal runs on the inbound request before
// the route's filters, so a client naming a header in Connection cannot delete a header the
// gateway sets (finding F6); the request ID survives too.
func TestClientCannotDeleteGatewayHeaders(t *testing.T) {
	addr := hygieneServer(t, Options{})
	code, s, _ := rawGet(t, addr, "/public/p", "Connection: x-internal-auth, X-Request-Id, keep-alive", "Keep-Alive: 5", "X-Other: kept")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	h := http.Header(s.Header)
	if h.Get("X-Internal-Auth") != "gateway" || h.Get("X-Request-Id") == "" {
		t.Fatalf("upstream headers %v: the client deleted gateway-set headers", h)
	}
	if h.Get("Keep-Alive") != "" || h.Get("X-Other") != "kept" {
		t.Fatalf("upstream headers %v", h)
	}
}

// TestForwardingHeadersFromUntrustedClients: Forwarded, X-Real-IP, X-Forwarded-*, X-Request-Id
// and underscore headers from a client that is not a trusted proxy never reach the upstream;
// from a trusted proxy the forwarding chain is kept (finding W5).
func TestForwardingHeadersFromUntrustedClients(t *testing.T) {
	spoof := []string{"Forwarded: for=1.2.3.4", "X-Real-IP: 1.2.3.4", "X-Forwarded-For: 1.2.3.4", "X-Forwarded-Host: evil.test",
		"X-Request-Id: client-chosen", "X_Forwarded_For: 1.2.3.4", "X_Internal_Auth: forged"}
	addr := hygieneServer(t, Options{})
	_, s, _ := rawGet(t, addr, "/public/p", spoof...)
	h := http.Header(s.Header)
	if h.Get("Forwarded") != "" || h.Get("X-Real-Ip") != "" || h.Get("X-Forwarded-For") != "127.0.0.1" ||
		h.Get("X-Forwarded-Host") != "files.test" || h.Get("X-Request-Id") == "client-chosen" || h.Get("X-Request-Id") == "" {
		t.Fatalf("untrusted client's forwarding headers reached upstream: %v", h)
	}
	for k := range h {
		if strings.Contains(k, "_") {
			t.Fatalf("underscore header %s reached upstream", k)
		}
	}
	trusted := hygieneServer(t, Options{Requests: RequestPolicy{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}})
	_, s, _ = rawGet(t, trusted, "/public/p", spoof...)
	h = http.Header(s.Header)
	if h.Get("X-Forwarded-For") != "1.2.3.4, 127.0.0.1" || h.Get("X-Request-Id") != "client-chosen" || h.Get("X-Real-Ip") != "1.2.3.4" {
		t.Fatalf("trusted proxy's forwarding headers: %v", h)
	}
	reject := hygieneServer(t, Options{Requests: RequestPolicy{Underscores: RejectUnderscoreHeaders}})
	if code, _, _ := rawGet(t, reject, "/public/p", "X_Forwarded_For: 1.2.3.4"); code != 400 {
		t.Fatalf("underscore header with reject: %d, want 400", code)
	}
}

// TestRedirectLocationIsEscaped: a redirect's Location is built from the escaped path, so
// decoded bytes cannot break the header or change the target (finding W2).
func TestRedirectLocationIsEscaped(t *testing.T) {
	addr := hygieneServer(t, Options{})
	for target, want := range map[string]string{
		"/redir/a%ffb":     "https://files.test/redir/a%FFb",
		"/redir/a%3Fb=1":   "https://files.test/redir/a%3Fb=1",
		"/redir/a%0d%0ab":  "https://files.test/redir/a%0D%0Ab",
		"/redir/x?q=1":     "https://files.test/redir/x?q=1",
		"/redir/a%20b/../": "https://files.test/redir/",
	} {
		code, _, h := rawGet(t, addr, target)
		if code != 302 || h.Get("Location") != want {
			t.Errorf("%s: %d Location %q, want %q", target, code, h.Get("Location"), want)
		}
	}
}

// FuzzInboundPath: whatever target a client sends, a request the gateway accepts has a path
// without dot segments or empty segments, and the escaped path that goes upstream decodes to
// exactly the path the routes matched on.
func FuzzInboundPath(f *testing.F) {
	for _, s := range []string{"/public/../admin", "//admin", "/./admin", "/public/%2e%2e/admin", "/public%2F..%2Fadmin", "/a%25b", "/caf%C3%A9", "/a/..;/b", "/%3f", "/a b"} {
		f.Add(s)
	}
	p := &RequestPolicy{}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || u.Opaque != "" || u.Host != "" {
			return
		}
		r := &http.Request{Method: "GET", URL: u}
		if code, _ := p.normalizePath(r); code != 0 {
			return
		}
		esc := r.URL.EscapedPath()
		dec, err := url.PathUnescape(esc)
		if err != nil || dec != r.URL.Path {
			t.Fatalf("%q: upstream path %q decodes to %q (%v), routed on %q", target, esc, dec, err, r.URL.Path)
		}
		if strings.Contains(dec, "//") {
			t.Fatalf("%q: empty segment in %q", target, dec)
		}
		for seg := range strings.SplitSeq(dec, "/") {
			if seg, _, _ = strings.Cut(seg, ";"); seg == "." || seg == ".." {
				t.Fatalf("%q: dot segment in %q (upstream %q)", target, dec, esc)
			}
		}
		if u2, err := url.ParseRequestURI(esc); err != nil || fmt.Sprint(u2.Path) != dec {
			t.Fatalf("%q: upstream target %q does not parse back to %q", target, esc, dec)
		}
	})
}

// A request whose body the gateway does not read (the route answers at the gateway: a direct
// response, a redirect) must not leave that body on a keep-alive connection to be parsed as
// the next request: the next response the client reads is its own next request's, or the
// connection is closed. (A body left behind desynchronises the client's responses, and lets
// a body smuggle a request past what the first one was judged by.)
func TestUnreadBodyOfALocalAnswer(t *testing.T) {
	addr := hygieneServer(t, Options{})
	for _, c := range []struct{ name, head, body string }{
		{"content-length", "POST /admin HTTP/1.1\r\nHost: files.test\r\nContent-Length: 38\r\n\r\n", "GET /smuggled HTTP/1.1\r\nHost: x.test\r\n\r\n"},
		{"chunked", "POST /redir HTTP/1.1\r\nHost: files.test\r\nTransfer-Encoding: chunked\r\n\r\n", "26\r\nGET /smuggled HTTP/1.1\r\nHost: x.test\r\n\r\n\r\n0\r\n\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			next := "GET /public/next HTTP/1.1\r\nHost: files.test\r\n\r\n"
			if _, err := io.WriteString(conn, c.head+c.body+next); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			first, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, first.Body)
			if first.StatusCode != 403 && first.StatusCode != 302 {
				t.Fatalf("first response %d, want the local answer", first.StatusCode)
			}
			second, err := http.ReadResponse(br, nil)
			if err != nil {
				return // closed after the first answer: nothing was misread
			}
			b, _ := io.ReadAll(second.Body)
			var s seen
			_ = json.Unmarshal(b, &s)
			if second.StatusCode != 200 || s.Target != "/public/next" {
				t.Fatalf("second response %d (backend saw %q), want the next request's 200 from /public/next: the unread body was parsed as a request", second.StatusCode, s.Target)
			}
		})
	}
}
