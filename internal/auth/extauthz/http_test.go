package extauthz

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// seen is what an HTTP authorization server got.
type seen struct {
	Method, RequestURI, Host, Proto string
	Header                          http.Header
	Body                            []byte
}

// httpAuthz is a real HTTP authorization server on loopback: it records each check request
// and answers with respond.
type httpAuthz struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func startHTTPAuthz(t testing.TB, respond func(w http.ResponseWriter, r *http.Request)) *httpAuthz {
	t.Helper()
	s := &httpAuthz{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, seen{r.Method, r.RequestURI, r.Host, r.Proto, r.Header.Clone(), body})
		s.mu.Unlock()
		respond(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *httpAuthz) last(t *testing.T) seen {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		t.Fatal("the server got no check request")
	}
	return s.reqs[len(s.reqs)-1]
}

func (s *httpAuthz) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

func newHTTP(t testing.TB, cfg HTTPConfig) *HTTPClient {
	t.Helper()
	c, err := NewHTTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A 200 allows: the check request has the client's method, Host, pathPrefix + path and
// headers; the headersToUpstream found in the answer overwrite the upstream's (case 90).
func TestHTTPAllowCopiesHeaders(t *testing.T) {
	srv := startHTTPAuthz(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-User-Id"] = []string{"alice"}
		h["X-Groups"] = []string{"admins", "ops"}
		h["X-Not-Listed"] = []string{"no"}
		h["Host"] = []string{"evil.example"}
		h["X-Envoy-Auth-Headers-To-Remove"] = []string{"authorization, host", ":path"}
		w.Write([]byte("ignored body"))
	})
	c := newHTTP(t, HTTPConfig{
		URL:               srv.URL,
		PathPrefix:        "/authz",
		HeadersToUpstream: []string{"x-user-id", "X-Groups", "x-absent", "host", "Authorization"},
	})
	r := testRequest()
	r.Method = "DELETE"
	r.Headers.Set(partialBodyHeader, "false") // a client's claim, with no body included
	d, err := c.Check(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	got := srv.last(t)
	if got.Method != "DELETE" || got.RequestURI != "/authz/v1/items?limit=5" || got.Host != "api.example.com" {
		t.Errorf("check request = %s %s Host %s", got.Method, got.RequestURI, got.Host)
	}
	if got.Header.Get("Authorization") != "Bearer t" || got.Header.Get("X-Request-Id") != "r1" ||
		got.Header.Get("User-Agent") != "" || got.Header.Get(partialBodyHeader) != "" {
		t.Errorf("check request headers = %v", got.Header)
	}
	if !d.Allowed || d.Status != 0 || d.Body != nil || d.HeadersToClient != nil {
		t.Fatalf("decision = %+v, want a plain allow", d)
	}
	want := []HeaderMutation{
		{"X-User-Id", "alice", OverwriteOrAdd},
		{"X-Groups", "admins", OverwriteOrAdd},
		{"X-Groups", "ops", AppendOrAdd},
	}
	if !reflect.DeepEqual(d.Upstream, want) {
		t.Errorf("Upstream = %+v\nwant %+v", d.Upstream, want)
	}
	if want := []string{"Authorization"}; !reflect.DeepEqual(d.UpstreamRemove, want) {
		t.Errorf("UpstreamRemove = %q, want %q", d.UpstreamRemove, want)
	}
	if want := []string{"Host", "Host", ":path"}; !reflect.DeepEqual(d.Refused, want) {
		t.Errorf("Refused = %q, want %q", d.Refused, want)
	}
	up := http.Header{"X-User-Id": {"forged"}, "X-Groups": {"forged"}, "Authorization": {"Bearer t"}}
	d.ApplyUpstream(up)
	if want := (http.Header{"X-User-Id": {"alice"}, "X-Groups": {"admins", "ops"}}); !reflect.DeepEqual(up, want) {
		t.Errorf("upstream headers = %v, want %v", up, want)
	}
}

// A 302 is relayed with its Location, not followed (case 90).
func TestHTTPRedirectRelayed(t *testing.T) {
	var followed atomic.Int32
	srv := startHTTPAuthz(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			followed.Add(1)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "state", Value: "xyz"})
		w.Header().Set("Location", "/login?rd=%2Fv1")
		w.WriteHeader(http.StatusFound)
	})
	c := newHTTP(t, HTTPConfig{URL: srv.URL})
	d, err := c.Check(context.Background(), testRequest())
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed || d.Status != 302 || d.HeadersToClient.Get("Location") != "/login?rd=%2Fv1" ||
		d.HeadersToClient.Get("Set-Cookie") != "state=xyz" {
		t.Fatalf("decision = %+v", d)
	}
	if d.HeadersToClient.Get("Content-Length") != "" {
		t.Errorf("framing header relayed: %v", d.HeadersToClient)
	}
	if n := followed.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
}

// A 401 is relayed with its body and WWW-Authenticate, which passes even when
// headersToClient does not list it; other unlisted headers do not.
func TestHTTPUnauthorizedRelayed(t *testing.T) {
	srv := startHTTPAuthz(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="authz"`)
		w.Header().Set("X-Debug", "internal detail")
		w.Header().Set("X-Reason", "expired")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte("login first"))
	})
	c := newHTTP(t, HTTPConfig{URL: srv.URL, HeadersToClient: []string{"x-reason", "content-type"}})
	d, err := c.Check(context.Background(), testRequest())
	if err != nil {
		t.Fatal(err)
	}
	want := http.Header{
		"Www-Authenticate": {`Basic realm="authz"`},
		"X-Reason":         {"expired"},
		"Content-Type":     {"text/plain"},
	}
	if d.Allowed || d.Status != 401 || string(d.Body) != "login first" || !reflect.DeepEqual(d.HeadersToClient, want) {
		t.Fatalf("decision = %+v\nwant headers %v", d, want)
	}
	if OutcomeOf(d, nil) != OutcomeDenied {
		t.Error("outcome is not denied")
	}
}

// Only 200 allows: other 2xx and 4xx answers are denials relayed as they are; a 5xx is a
// service failure with the answer kept in Reply.
func TestHTTPOnly200Allows(t *testing.T) {
	for _, code := range []int{201, 204, 206, 400, 403, 404, 429} {
		srv := startHTTPAuthz(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) })
		d, err := newHTTP(t, HTTPConfig{URL: srv.URL}).Check(context.Background(), testRequest())
		if err != nil || d.Allowed || d.Status != code {
			t.Errorf("answer %d: decision %+v, error %v", code, d, err)
		}
	}
	srv := startHTTPAuthz(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("overloaded"))
	})
	d, err := newHTTP(t, HTTPConfig{URL: srv.URL}).Check(context.Background(), testRequest())
	if d != nil {
		t.Fatalf("decision = %+v", d)
	}
	e := wantOutcome(t, err, OutcomeServiceError)
	if e.Reply == nil || e.Reply.Status != 503 || string(e.Reply.Body) != "overloaded" || e.Reply.HeadersToClient.Get("Retry-After") != "3" {
		t.Errorf("Reply = %+v", e.Reply)
	}
}

// The check path is the base URL's path, then pathPrefix, then the client's target exactly
// as it came: escapes and query kept, "//" not turned into an authority (case 90).
func TestHTTPPathPrefix(t *testing.T) {
	srv := startHTTPAuthz(t, func(w http.ResponseWriter, r *http.Request) {})
	for _, tc := range []struct{ base, prefix, path, want string }{
		{"", "", "/v1/items?limit=5", "/v1/items?limit=5"},
		{"", "/authz", "/v1/items?limit=5", "/authz/v1/items?limit=5"},
		{"/base/", "/authz", "/a%2Fb/%7Bx%7D?q=%20&r", "/base/authz/a%2Fb/%7Bx%7D?q=%20&r"},
		{"", "", "//evil.example/x?", "//evil.example/x?"},
		{"", "/authz", "", "/authz/"},
		{"", "", "/{raw}|", "/{raw}|"},
	} {
		c := newHTTP(t, HTTPConfig{URL: srv.URL + tc.base, PathPrefix: tc.prefix})
		r := testRequest()
		r.Path = tc.path
		if _, err := c.Check(context.Background(), r); err != nil {
			t.Errorf("%+v: %v", tc, err)
			continue
		}
		if got := srv.last(t); got.RequestURI != tc.want || got.Host != "api.example.com" {
			t.Errorf("%+v: server got %q (Host %q), want %q", tc, got.RequestURI, got.Host, tc.want)
		}
	}

	// A target that cannot be sent is refused before anything is sent.
	c := newHTTP(t, HTTPConfig{URL: srv.URL})
	n := srv.count()
	for _, p := range []string{"relative", "/a b", "/a\r\nX: y"} {
		r := testRequest()
		r.Path = p
		_, err := c.Check(context.Background(), r)
		wantOutcome(t, err, OutcomeInvalidRequest)
	}
	if srv.count() != n {
		t.Error("an invalid target was sent")
	}

	for _, cfg := range []HTTPConfig{{URL: "ftp://x"}, {URL: "http://"}, {URL: "http://x?q"}, {URL: "http://x", PathPrefix: "authz"}} {
		if _, err := NewHTTP(cfg); err == nil {
			t.Errorf("NewHTTP(%+v): no error", cfg)
		}
	}
}

// Host can be fixed for services behind a virtual host.
func TestHTTPHostOverride(t *testing.T) {
	srv := startHTTPAuthz(t, func(w http.ResponseWriter, r *http.Request) {})
	c := newHTTP(t, HTTPConfig{URL: srv.URL, Host: "authz.internal"})
	if _, err := c.Check(context.Background(), testRequest()); err != nil {
		t.Fatal(err)
	}
	if got := srv.last(t).Host; got != "authz.internal" {
		t.Errorf("Host = %q", got)
	}
}

// BufferBody and the check: a body of exactly maxBytes is sent whole; one byte more is cut
// to maxBytes and flagged partial; the upstream still gets every byte (case 92).
func TestHTTPBodyUpToLimit(t *testing.T) {
	const max = 1024
	srv := startHTTPAuthz(t, func(w http.ResponseWriter, r *http.Request) {})
	c := newHTTP(t, HTTPConfig{URL: srv.URL})
	for _, tc := range []struct {
		size    int
		partial bool
	}{{0, false}, {max - 1, false}, {max, false}, {max + 1, true}, {3 * max, true}} {
		orig := bytes.Repeat([]byte("0123456789abcdef"), 3*max/16+1)[:tc.size]
		buf, partial, rest, err := BufferBody(io.NopCloser(bytes.NewReader(orig)), max)
		if err != nil || partial != tc.partial {
			t.Fatalf("size %d: BufferBody partial=%v err=%v", tc.size, partial, err)
		}
		r := testRequest()
		r.Method, r.Body, r.BodyPartial, r.ContentLength = "POST", buf, partial, int64(tc.size)
		if _, err := c.Check(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		got := srv.last(t)
		want := orig[:min(tc.size, max)]
		if !bytes.Equal(got.Body, want) {
			t.Errorf("size %d: service got %d bytes, want %d", tc.size, len(got.Body), len(want))
		}
		if p := got.Header.Get(partialBodyHeader); p != map[bool]string{false: "false", true: "true"}[tc.partial] {
			t.Errorf("size %d: %s = %q", tc.size, partialBodyHeader, p)
		}
		all, _ := io.ReadAll(rest)
		if !bytes.Equal(all, orig) {
			t.Errorf("size %d: replay has %d bytes, want %d", tc.size, len(all), len(orig))
		}
	}
}

// The default headersToAuthz sends every header, in both protocols; a list restricts them
// (case 91). Hop-by-hop headers never go in an HTTP check request.
func TestHeadersToAuthzDefaultAllBothModes(t *testing.T) {
	client := http.Header{
		"Authorization": {"Bearer t"},
		"X-User-Id":     {"alice"},
		"X-Custom":      {"1", "2"},
		"Accept":        {"*/*"},
	}
	httpSrv := startHTTPAuthz(t, func(w http.ResponseWriter, r *http.Request) {})
	grpcSrv := startAuthz(t, nil, answer(nil))
	hc := newHTTP(t, HTTPConfig{URL: httpSrv.URL})
	gc := newGRPC(t, GRPCConfig{Target: grpcSrv.addr})

	for _, tc := range []struct {
		allow []string
		want  []string
	}{
		{nil, []string{"Authorization", "X-User-Id", "X-Custom", "Accept"}},
		{[]string{"x-user-id", "AUTHORIZATION"}, []string{"Authorization", "X-User-Id"}},
	} {
		r := testRequest()
		r.Headers = FilterHeaders(client, tc.allow)
		if _, err := hc.Check(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if _, err := gc.Check(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		hs, gs := httpSrv.last(t).Header, grpcSrv.last(t).GetAttributes().GetRequest().GetHttp().GetHeaders()
		for _, name := range []string{"Authorization", "X-User-Id", "X-Custom", "Accept"} {
			wanted := false
			for _, w := range tc.want {
				wanted = wanted || w == name
			}
			if got := strings.Join(hs[name], ","); (got != "") != wanted || (wanted && got != strings.Join(client[name], ",")) {
				t.Errorf("allow %q: HTTP service got %s = %q", tc.allow, name, got)
			}
			if got, ok := gs[strings.ToLower(name)]; ok != wanted || (wanted && got != strings.Join(client[name], ",")) {
				t.Errorf("allow %q: gRPC service got %s = %q", tc.allow, name, got)
			}
		}
	}

	r := testRequest()
	r.Headers = http.Header{
		"Connection":        {"keep-alive, X-Hop"},
		"X-Hop":             {"1"},
		"Keep-Alive":        {"timeout=5"},
		"Te":                {"trailers"},
		"Upgrade":           {"websocket"},
		"Proxy-Connection":  {"keep-alive"},
		"Transfer-Encoding": {"chunked"},
		"Content-Length":    {"99"},
		"Expect":            {"100-continue"},
		"X-Kept":            {"yes"},
	}
	if _, err := hc.Check(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	got := httpSrv.last(t).Header
	for name := range r.Headers {
		if name != "X-Kept" && got.Get(name) != "" {
			t.Errorf("%s was sent: %q", name, got.Get(name))
		}
	}
	if got.Get("X-Kept") != "yes" {
		t.Errorf("X-Kept missing: %v", got)
	}
}

// A denial body is read only up to the limit and relayed cut.
func TestHTTPResponseBodyCapped(t *testing.T) {
	big := bytes.Repeat([]byte("y"), 200<<10)
	srv := startHTTPAuthz(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		w.Write(big)
	})
	d, err := newHTTP(t, HTTPConfig{URL: srv.URL}).Check(context.Background(), testRequest())
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != 403 || len(d.Body) != DefaultMaxResponseBody || !d.BodyTruncated {
		t.Fatalf("status %d, body %d bytes, truncated %v", d.Status, len(d.Body), d.BodyTruncated)
	}
	d, err = newHTTP(t, HTTPConfig{URL: srv.URL, MaxResponseBody: 10}).Check(context.Background(), testRequest())
	if err != nil || string(d.Body) != "yyyyyyyyyy" || !d.BodyTruncated {
		t.Fatalf("decision %+v, %v", d, err)
	}
}

// A slow service gives a timeout; a service that is down, unavailable; one that does not
// speak HTTP, a protocol error (case 93).
func TestHTTPFailures(t *testing.T) {
	block := make(chan struct{})
	slow := startHTTPAuthz(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})
	defer close(block)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := newHTTP(t, HTTPConfig{URL: slow.URL}).Check(ctx, testRequest())
	wantOutcome(t, err, OutcomeTimeout)
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("took %v", el)
	}

	// The deadline covers the body too.
	slowBody := startHTTPAuthz(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})
	ctx2, cancel2 := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel2()
	_, err = newHTTP(t, HTTPConfig{URL: slowBody.URL}).Check(ctx2, testRequest())
	wantOutcome(t, err, OutcomeTimeout)

	ctx3, cancel3 := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel3)
	_, err = newHTTP(t, HTTPConfig{URL: slow.URL}).Check(ctx3, testRequest())
	wantOutcome(t, err, OutcomeCanceled)

	_, err = newHTTP(t, HTTPConfig{URL: "http://" + closedAddr(t)}).Check(context.Background(), testRequest())
	wantOutcome(t, err, OutcomeUnavailable)

	// Through a dial function that cannot reach the service (say, no healthy endpoint).
	_, err = newHTTP(t, HTTPConfig{URL: "http://authz.internal", Dial: func(context.Context, string) (net.Conn, error) {
		return nil, io.ErrClosedPipe
	}}).Check(context.Background(), testRequest())
	wantOutcome(t, err, OutcomeUnavailable)

	garbage := rawServer(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n\r\n"))
	})
	_, err = newHTTP(t, HTTPConfig{URL: "http://" + garbage}).Check(context.Background(), testRequest())
	wantOutcome(t, err, OutcomeProtocolError)

	hangup := rawServer(t, func(c net.Conn) { bufio.NewReader(c).ReadString('\n') })
	_, err = newHTTP(t, HTTPConfig{URL: "http://" + hangup}).Check(context.Background(), testRequest())
	wantOutcome(t, err, OutcomeUnavailable)
}

// rawServer accepts TCP connections and hands each to serve, then closes it.
func rawServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return lis.Addr().String()
}

// https through the caller's dial function, and h2c.
func TestHTTPTLSAndH2C(t *testing.T) {
	cert, pool := selfSigned(t)
	var proto atomic.Value
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(r.Proto)
		w.Header().Set("X-User-Id", "bob")
	})
	tlsSrv := httptest.NewUnstartedServer(h)
	tlsSrv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	tlsSrv.EnableHTTP2 = true
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	addr := tlsSrv.Listener.Addr().String()
	var dialed atomic.Value
	c := newHTTP(t, HTTPConfig{
		URL: "https://authz.test",
		Dial: func(ctx context.Context, a string) (net.Conn, error) {
			dialed.Store(a)
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		},
		TLS:               &tls.Config{RootCAs: pool},
		HeadersToUpstream: []string{"x-user-id"},
	})
	d, err := c.Check(context.Background(), testRequest())
	if err != nil || !d.Allowed || len(d.Upstream) != 1 {
		t.Fatalf("Check = %+v, %v", d, err)
	}
	if dialed.Load() != "authz.test:443" || proto.Load() != "HTTP/2.0" {
		t.Errorf("dialed %v, protocol %v", dialed.Load(), proto.Load())
	}

	h2c := httptest.NewUnstartedServer(h)
	h2c.Config.Protocols = new(http.Protocols)
	h2c.Config.Protocols.SetUnencryptedHTTP2(true)
	h2c.Start()
	defer h2c.Close()
	c = newHTTP(t, HTTPConfig{URL: h2c.URL, H2C: true})
	if d, err := c.Check(context.Background(), testRequest()); err != nil || !d.Allowed {
		t.Fatalf("h2c: Check = %+v, %v", d, err)
	}
	if proto.Load() != "HTTP/2.0" {
		t.Errorf("h2c: protocol %v", proto.Load())
	}

	// An untrusted certificate is a protocol (configuration) error.
	bad := newHTTP(t, HTTPConfig{URL: tlsSrv.URL})
	_, err = bad.Check(context.Background(), testRequest())
	wantOutcome(t, err, OutcomeProtocolError)
}

// An injected RoundTripper is used as is.
func TestHTTPInjectedTransport(t *testing.T) {
	srv := startHTTPAuthz(t, func(w http.ResponseWriter, r *http.Request) {})
	var calls atomic.Int32
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		calls.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})
	c := newHTTP(t, HTTPConfig{URL: srv.URL, Transport: rt})
	if d, err := c.Check(context.Background(), testRequest()); err != nil || !d.Allowed {
		t.Fatalf("Check = %+v, %v", d, err)
	}
	if calls.Load() != 1 {
		t.Errorf("transport called %d times", calls.Load())
	}
	r := testRequest()
	r.Method = "CONNECT"
	_, err := c.Check(context.Background(), r)
	wantOutcome(t, err, OutcomeInvalidRequest)
	r.Method = "BAD METHOD"
	_, err = c.Check(context.Background(), r)
	wantOutcome(t, err, OutcomeInvalidRequest)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
