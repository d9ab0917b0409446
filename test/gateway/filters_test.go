package gateway

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"

	"apoxy.dev/apoxy/internal/edgetest"
)

// echo is what the echo backend reports about a request.
type echo struct {
	Backend string              `json:"backend"`
	Method  string              `json:"method"`
	Host    string              `json:"host"`
	Path    string              `json:"path"`
	Headers map[string][]string `json:"headers"`
	Body    int                 `json:"body"`
}

// echoServer answers with JSON describing the request; /delay/<ms> waits first; /status/<n>
// answers n; /big answers 4 KiB of JSON.
func echoServer(t testing.TB, addr, name string, hits *atomic.Int64) net.Listener {
	return serve(t, addr, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits != nil {
			hits.Add(1)
		}
		if ms, ok := strings.CutPrefix(r.URL.Path, "/delay/"); ok {
			var d int
			fmt.Sscan(ms, &d)
			time.Sleep(time.Duration(d) * time.Millisecond)
		}
		if code, ok := strings.CutPrefix(r.URL.Path, "/status/"); ok {
			var c int
			fmt.Sscan(code, &c)
			w.WriteHeader(c)
			return
		}
		if r.URL.Path == "/tiny" { // a compressible body under the default 128-byte minimum
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"ok":true}`)
			return
		}
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		e := echo{Backend: name, Method: r.Method, Host: r.Host, Path: r.URL.RequestURI(), Headers: r.Header, Body: int(n)}
		if r.URL.Path == "/big" {
			e.Path = strings.Repeat("p", 4096)
		}
		json.NewEncoder(w).Encode(e)
	}))
}

func portOf(ln net.Listener) string { return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port) }

func TestFiltersAndActions(t *testing.T) {
	var mirrorHits, mainHits atomic.Int64
	ln := echoServer(t, "127.0.0.6:0", "main", &mainHits)
	canary := echoServer(t, "127.0.0.7:"+portOf(ln), "canary", nil)
	_ = canary
	echoServer(t, "127.0.0.8:"+portOf(ln), "mirror", &mirrorHits)
	port := portOf(ln)
	e := edgetest.Start(t, edgetest.Options{})
	e.Apply(strings.ReplaceAll(`
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: main}
spec: {endpoints: [{ip: 127.0.0.6}]}
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: canary}
spec: {endpoints: [{ip: 127.0.0.7}]}
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: mirror}
spec: {endpoints: [{ip: 127.0.0.8}]}
---
apiVersion: extensions.apoxy.dev/v1alpha2
kind: DirectResponse
metadata: {name: teapot}
spec: {statusCode: 418, contentType: text/plain, body: {inline: "short and stout"}, headers: [{name: x-pot, value: tea}]}
---
apiVersion: extensions.apoxy.dev/v1alpha2
kind: HTTPRouteFilter
metadata: {name: zstd-only}
spec: {compressor: {algorithms: [zstd], minContentLength: 64}}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: filters}
spec:
  parentRefs: [{name: default}]
  hostnames: [f.example.com]
  rules:
  - matches: [{path: {value: /headers}}]
    filters:
    - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-set, value: a}], add: [{name: x-add, value: b}], remove: [x-drop]}}
    - {type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: x-resp, value: c}], remove: [content-type]}}
    backendRefs: [{kind: Backend, name: main, port: PORT}]
  - matches: [{path: {value: /rewrite}}]
    filters: [{type: URLRewrite, urlRewrite: {hostname: internal.example.com, path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}}]
    backendRefs: [{kind: Backend, name: main, port: PORT}]
  - matches: [{path: {value: /full}}]
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /replaced}}}]
    backendRefs: [{kind: Backend, name: main, port: PORT}]
  - matches: [{path: {value: /redirect}}]
    filters: [{type: RequestRedirect, requestRedirect: {scheme: https, hostname: secure.example.com, statusCode: 301}}]
  - matches: [{path: {value: /moved}}]
    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}, statusCode: 308}}]
  - matches: [{path: {value: /teapot}}]
    filters: [{type: ExtensionRef, extensionRef: {group: extensions.apoxy.dev, kind: DirectResponse, name: teapot}}]
  - matches: [{path: {value: /zstd}}]
    filters: [{type: ExtensionRef, extensionRef: {group: extensions.apoxy.dev, kind: HTTPRouteFilter, name: zstd-only}}]
    backendRefs: [{kind: Backend, name: main, port: PORT}]
  - matches: [{path: {value: /mirrored}}]
    filters: [{type: RequestMirror, requestMirror: {backendRef: {kind: Backend, name: mirror, port: PORT}}}]
    backendRefs: [{kind: Backend, name: main, port: PORT}]
  - matches: [{path: {value: /cors}}]
    filters: [{type: CORS, cors: {allowOrigins: ["https://app.example.com"], allowMethods: [GET, PUT], allowHeaders: [x-token], maxAge: 600}}]
    backendRefs: [{kind: Backend, name: main, port: PORT}]
  - matches: [{path: {value: /split}}]
    backendRefs: [{kind: Backend, name: main, port: PORT, weight: 1}, {kind: Backend, name: canary, port: PORT, weight: 1}]
  - matches: [{path: {value: /broken}}]
    backendRefs: [{kind: Backend, name: nope, port: PORT}]
  - matches: [{path: {value: /per-backend}}]
    backendRefs:
    - kind: Backend
      name: canary
      port: PORT
      filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: x-canary, value: "yes"}]}}]
  - matches: [{path: {value: /delay}}]
    timeouts: {request: 300ms}
    backendRefs: [{kind: Backend, name: main, port: PORT}]
  - matches: [{path: {value: /status}}]
    retry: {codes: [503], attempts: 2}
    backendRefs: [{kind: Backend, name: main, port: PORT}]
  - matches: [{path: {value: /}}]
    backendRefs: [{kind: Backend, name: main, port: PORT}]
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: backend-filters}
spec:
  parentRefs: [{name: default}]
  hostnames: [f.example.com]
  rules:
  - matches: [{path: {value: /backend-rewrite}}]
    backendRefs:
    - kind: Backend
      name: main
      port: PORT
      filters:
      - {type: URLRewrite, urlRewrite: {hostname: be.example.com, path: {type: ReplacePrefixMatch, replacePrefixMatch: /inner}}}
      - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-backend, value: main}]}}
      - {type: RequestMirror, requestMirror: {backendRef: {kind: Backend, name: mirror, port: PORT}}}
  - matches: [{path: {value: /backend-teapot}}]
    backendRefs:
    - {kind: Backend, name: main, port: PORT, filters: [{type: ExtensionRef, extensionRef: {group: extensions.apoxy.dev, kind: DirectResponse, name: teapot}}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: backend-redirect}
spec:
  parentRefs: [{name: default}]
  hostnames: [r.example.com]
  rules:
  - backendRefs:
    - {kind: Backend, name: main, port: PORT, filters: [{type: RequestRedirect, requestRedirect: {hostname: elsewhere.example.com}}]}
`, "PORT", port))
	// A filter that cannot apply to a backendRef is refused in status, and that backend's
	// share of requests answers 500 rather than silently skipping the filter.
	e.WaitFor("backendRef redirect refused", func() error {
		if st, reason, msg := routeCondition(e, "backend-redirect", "ResolvedRefs"); st != "False" || reason != "IncompatibleFilters" || !strings.Contains(msg, "RequestRedirect") {
			return fmt.Errorf("ResolvedRefs %s %s %q", st, reason, msg)
		}
		return nil
	})
	e.WaitFor("route programmed", func() error {
		r := e.Get("gateway.apoxy.dev/v1", "HTTPRoute", "filters")
		if !strings.Contains(fmt.Sprint(r.Object["status"]), "BackendNotFound") {
			return fmt.Errorf("status not written yet")
		}
		return nil
	})
	for proto, cl := range clients(e) {
		t.Run(proto, func(t *testing.T) { testFilters(t, e, cl.c, cl.base, &mainHits, &mirrorHits) })
	}
}

func testFilters(t *testing.T, e *edgetest.Env, client *http.Client, base string, mainHits, mirrorHits *atomic.Int64) {
	client = &http.Client{Timeout: 10 * time.Second, Transport: client.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	send := func(method, path string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		req.Host = "f.example.com"
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	var ech echo
	decode := func(b []byte) echo {
		t.Helper()
		var e echo
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("backend reply %q: %v", b, err)
		}
		return e
	}
	e.WaitFor("served", func() error {
		if r, b := send("GET", "/", "X-Drop", "x"); r.StatusCode != 200 {
			return fmt.Errorf("%d %s", r.StatusCode, b)
		}
		return nil
	})

	t.Run("header modifiers", func(t *testing.T) {
		resp, b := send("GET", "/headers", "X-Drop", "gone", "X-Add", "first")
		ech = decode(b)
		if got := ech.Headers["X-Set"]; len(got) != 1 || got[0] != "a" {
			t.Errorf("x-set upstream = %v", got)
		}
		if got := ech.Headers["X-Add"]; len(got) != 2 {
			t.Errorf("x-add upstream = %v, want the client's value plus b", got)
		}
		if _, ok := ech.Headers["X-Drop"]; ok {
			t.Error("x-drop reached upstream")
		}
		if resp.Header.Get("X-Resp") != "c" || resp.Header.Get("Content-Type") != "" {
			t.Errorf("response headers %v", resp.Header)
		}
	})
	t.Run("rewrite prefix and host", func(t *testing.T) {
		_, b := send("GET", "/rewrite/items?q=1")
		ech = decode(b)
		if ech.Path != "/v2/items?q=1" || ech.Host != "internal.example.com" {
			t.Errorf("upstream saw host %q path %q", ech.Host, ech.Path)
		}
		if ech.Headers["X-Forwarded-Host"][0] != "f.example.com" {
			t.Errorf("x-forwarded-host %v", ech.Headers["X-Forwarded-Host"])
		}
	})
	t.Run("rewrite full path", func(t *testing.T) {
		if _, b := send("GET", "/full/a/b"); decode(b).Path != "/replaced" {
			t.Errorf("upstream path %q", decode(b).Path)
		}
	})
	t.Run("redirects", func(t *testing.T) {
		resp, _ := send("GET", "/redirect/x?y=1")
		if resp.StatusCode != 301 || resp.Header.Get("Location") != "https://secure.example.com/redirect/x?y=1" {
			t.Errorf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		resp, _ = send("GET", "/moved/page")
		scheme, addr, _ := strings.Cut(base, "://")
		_, port, _ := net.SplitHostPort(addr)
		if resp.StatusCode != 308 || resp.Header.Get("Location") != scheme+"://f.example.com:"+port+"/new/page" {
			t.Errorf("prefix redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("direct response", func(t *testing.T) {
		resp, b := send("GET", "/teapot")
		if resp.StatusCode != 418 || string(b) != "short and stout" || resp.Header.Get("X-Pot") != "tea" {
			t.Errorf("direct response: %d %q %v", resp.StatusCode, b, resp.Header)
		}
	})
	t.Run("compression", func(t *testing.T) {
		for _, tc := range []struct{ path, accept, want string }{
			{"/big", "gzip", "gzip"}, {"/big", "br", "br"}, {"/big", "zstd, gzip", "zstd"}, {"/big", "", ""},
			{"/zstd/big", "gzip", ""}, {"/zstd/big", "zstd", "zstd"},
		} {
			resp, b := send("GET", tc.path, "Accept-Encoding", tc.accept)
			if got := resp.Header.Get("Content-Encoding"); got != tc.want {
				t.Errorf("%s with Accept-Encoding %q: Content-Encoding %q, want %q", tc.path, tc.accept, got, tc.want)
				continue
			}
			var r io.Reader = bytes.NewReader(b)
			switch tc.want {
			case "gzip":
				r, _ = gzip.NewReader(r)
			case "br":
				r = brotli.NewReader(r)
			case "zstd":
				zr, _ := zstd.NewReader(r)
				r = zr
			}
			plain, err := io.ReadAll(r)
			if err != nil || !bytes.Contains(plain, []byte(`"backend":"main"`)) {
				t.Errorf("%s %s: decoded body %q, %v", tc.path, tc.want, plain[:min(len(plain), 80)], err)
			}
		}
		// Bodies under minContentLength stay plain.
		if resp, b := send("GET", "/tiny", "Accept-Encoding", "gzip"); resp.Header.Get("Content-Encoding") != "" || string(b) != `{"ok":true}` {
			t.Errorf("small body: Content-Encoding %q, body %q; want it plain", resp.Header.Get("Content-Encoding"), b)
		}
	})
	t.Run("mirror", func(t *testing.T) {
		before := mirrorHits.Load()
		send("GET", "/mirrored")
		e.WaitFor("mirror hit", func() error {
			if mirrorHits.Load() == before {
				return fmt.Errorf("mirror backend not hit")
			}
			return nil
		})
	})
	t.Run("cors", func(t *testing.T) {
		resp, _ := send("OPTIONS", "/cors", "Origin", "https://app.example.com", "Access-Control-Request-Method", "PUT")
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
			resp.Header.Get("Access-Control-Allow-Methods") != "GET, PUT" || resp.Header.Get("Access-Control-Max-Age") != "600" {
			t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
		}
		resp, _ = send("GET", "/cors", "Origin", "https://evil.example.com")
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("disallowed origin got CORS headers")
		}
	})
	t.Run("weighted split", func(t *testing.T) {
		seen := map[string]int{}
		for i := 0; i < 60; i++ {
			_, b := send("GET", "/split")
			seen[decode(b).Backend]++
		}
		if seen["main"] < 10 || seen["canary"] < 10 {
			t.Errorf("1:1 split over 60 requests: %v", seen)
		}
	})
	t.Run("per-backend response filter", func(t *testing.T) {
		if resp, _ := send("GET", "/per-backend"); resp.Header.Get("X-Canary") != "yes" {
			t.Errorf("response headers %v", resp.Header)
		}
	})
	t.Run("backendRef filters", func(t *testing.T) {
		before := mirrorHits.Load()
		_, b := send("GET", "/backend-rewrite/items?q=1")
		ech = decode(b)
		if ech.Path != "/inner/items?q=1" || ech.Host != "be.example.com" || ech.Headers["X-Backend"][0] != "main" {
			t.Errorf("the backend saw host %q path %q headers %v", ech.Host, ech.Path, ech.Headers)
		}
		e.WaitFor("backendRef mirror hit", func() error {
			if mirrorHits.Load() == before {
				return fmt.Errorf("mirror backend not hit")
			}
			return nil
		})
		if resp, b := send("GET", "/backend-teapot"); resp.StatusCode != 418 || string(b) != "short and stout" {
			t.Errorf("backendRef DirectResponse: %d %q", resp.StatusCode, b)
		}
		req, _ := http.NewRequest("GET", base+"/", nil)
		req.Host = "r.example.com"
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 500 || resp.Header.Get("Location") != "" {
			t.Errorf("refused backendRef redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("invalid backend answers 500", func(t *testing.T) {
		if resp, _ := send("GET", "/broken"); resp.StatusCode != 500 {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
	t.Run("request timeout answers 504", func(t *testing.T) {
		start := time.Now()
		if resp, _ := send("GET", "/delay/2000"); resp.StatusCode != 504 {
			t.Errorf("status %d", resp.StatusCode)
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Errorf("took %v, want about 300ms", d)
		}
		if resp, _ := send("GET", "/delay/10"); resp.StatusCode != 200 {
			t.Errorf("fast request: %d", resp.StatusCode)
		}
	})
	t.Run("retry on listed codes", func(t *testing.T) {
		before := mainHits.Load()
		if resp, _ := send("GET", "/status/503"); resp.StatusCode != 503 {
			t.Errorf("status %d", resp.StatusCode)
		}
		if got := mainHits.Load() - before; got != 3 {
			t.Errorf("backend saw %d attempts, want 3 (1 + 2 retries on 503)", got)
		}
		before = mainHits.Load()
		send("GET", "/status/500")
		if got := mainHits.Load() - before; got != 1 {
			t.Errorf("500 (not a retry code) was attempted %d times", got)
		}
	})
	t.Run("not found", func(t *testing.T) {
		req, _ := http.NewRequest("GET", base+"/", nil)
		req.Host = "unknown.example.com"
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("unknown host: %d", resp.StatusCode)
		}
	})
}

// TestStreamingWebSocketAndUploads: a WebSocket upgrade passes through and echoes, server-sent
// events arrive one by one (not buffered), and a 32 MiB upload streams to the backend.
func TestStreamingWebSocketAndUploads(t *testing.T) {
	ln := serve(t, "127.0.0.9:0", nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ws":
			if r.Header.Get("Upgrade") != "websocket" {
				http.Error(w, "want upgrade", 400)
				return
			}
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			brw.Flush()
			io.Copy(conn, brw) // echo raw frames
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
			for i := 0; i < 3; i++ {
				fmt.Fprintf(w, "data: %d\n\n", i)
				http.NewResponseController(w).Flush()
				time.Sleep(200 * time.Millisecond)
			}
		case "/upload":
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "%d", n)
		}
	}))
	e := edgetest.Start(t, edgetest.Options{})
	e.Apply(strings.ReplaceAll(`
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: stream}
spec: {endpoints: [{ip: 127.0.0.9}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: stream}
spec:
  parentRefs: [{name: default}]
  hostnames: [s.example.com]
  rules: [{backendRefs: [{kind: Backend, name: stream, port: PORT}]}]
`, "PORT", portOf(ln)))
	e.WaitFor("route accepted", e.RouteAccepted("stream"))
	e.WaitFor("served", func() error {
		req, _ := http.NewRequest("POST", "http://"+e.HTTPAddr+"/upload", strings.NewReader("x"))
		req.Host = "s.example.com"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%d", resp.StatusCode)
		}
		return nil
	})

	t.Run("websocket", func(t *testing.T) {
		conn, err := net.Dial("tcp", e.HTTPAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: s.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		conn.Write([]byte("ping-frame"))
		buf := make([]byte, 10)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping-frame" {
			t.Fatalf("echo over the upgraded connection: %q %v", buf, err)
		}
	})
	t.Run("server-sent events stream", func(t *testing.T) {
		req, _ := http.NewRequest("GET", "http://"+e.HTTPAddr+"/events", nil)
		req.Host = "s.example.com"
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r io.Reader = resp.Body
		if resp.Header.Get("Content-Encoding") == "gzip" {
			gz, err := gzip.NewReader(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			r = gz
		}
		sc := bufio.NewScanner(r)
		start := time.Now()
		var arrivals []time.Duration
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data:") {
				arrivals = append(arrivals, time.Since(start))
			}
		}
		if len(arrivals) != 3 || arrivals[0] > 150*time.Millisecond {
			t.Fatalf("events arrived at %v: the first must arrive before the stream ends (not buffered)", arrivals)
		}
	})
	t.Run("large upload streams", func(t *testing.T) {
		const size = 32 << 20
		req, _ := http.NewRequest("POST", "http://"+e.HTTPAddr+"/upload", io.LimitReader(zeroReader{}, size))
		req.Host = "s.example.com"
		req.ContentLength = size
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != fmt.Sprint(size) {
			t.Errorf("backend received %s bytes, want %d", b, size)
		}
	})
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
