package js

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/function"
)

// seedAuth is the seed's function, verbatim.
const seedAuth = `export default {
  async request(req) {
    const token = req.headers.get("authorization");
    if (!token) return new Response("Unauthorized", { status: 401 });
    return null; // pass through to backend
  }
}
`

func load(t testing.TB, src string, mode function.Mode, limits function.Limits) function.Function {
	t.Helper()
	f, err := Load(context.Background(), []byte(src), mode, limits)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func newReq(method, target string, h http.Header) *function.Request {
	u, _ := url.ParseRequestURI(target)
	if h == nil {
		h = http.Header{}
	}
	return &function.Request{Method: method, URL: u, Host: "example.com", Header: h, Proto: "HTTP/1.1", RemoteAddr: "10.0.0.1:1234"}
}

func TestSeedAuthCheck(t *testing.T) {
	f := load(t, seedAuth, function.ModeFilter, function.Limits{})
	res, err := f.Invoke(context.Background(), newReq("GET", "/x", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pass || res.Status != 401 || string(res.Body) != "Unauthorized" {
		t.Fatalf("without authorization: %+v body %q", res, res.Body)
	}
	req := newReq("GET", "/x", http.Header{"Authorization": {"Bearer t"}})
	res, err = f.Invoke(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pass {
		t.Fatalf("with authorization: %+v", res)
	}
	if req.Header.Get("Authorization") != "Bearer t" || req.Method != "GET" || req.URL.Path != "/x" {
		t.Fatalf("request changed: %+v", req)
	}
}

func TestFilterSetsHeader(t *testing.T) {
	f := load(t, `export default {
  async request(req) {
    req.headers.set("X-User", "alice");
    req.headers.delete("cookie");
    req.headers.set("host", "internal.example");
    return null;
  }
}`, function.ModeFilter, function.Limits{})
	req := newReq("POST", "/a?b=1", http.Header{"Cookie": {"c=1"}, "Accept": {"text/html"}})
	res, err := f.Invoke(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pass {
		t.Fatalf("not passed: %+v", res)
	}
	if got := req.Header.Get("X-User"); got != "alice" {
		t.Fatalf("X-User = %q", got)
	}
	if req.Header.Get("Cookie") != "" || req.Header.Get("Accept") != "text/html" {
		t.Fatalf("headers: %v", req.Header)
	}
	if req.Host != "internal.example" || req.Header.Get("Host") != "" {
		t.Fatalf("host: %q %v", req.Host, req.Header)
	}
	if req.Method != "POST" || req.URL.RawQuery != "b=1" {
		t.Fatalf("request: %s %s", req.Method, req.URL)
	}
}

func TestWorkersBackend(t *testing.T) {
	f := load(t, `export default {
  async fetch(request, env, ctx) {
    const u = new URL(request.url);
    const body = await request.text();
    return Response.json({ path: u.pathname, name: u.searchParams.get("name"), host: u.host,
      agent: request.headers.get("user-agent"), method: request.method, body, greeting: env.GREETING },
      { status: 201, headers: { "x-powered-by": "quickjs" } });
  }
}`, function.ModeBackend, function.Limits{})
	req := newReq("PUT", "/hello/world?name=Ada%20L", http.Header{"User-Agent": {"test/1"}})
	req.Body = strings.NewReader("payload ✓")
	res, err := f.Invoke(context.Background(), req, &function.Host{Env: map[string]string{"GREETING": "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"path":"/hello/world","name":"Ada L","host":"example.com","agent":"test/1","method":"PUT","body":"payload ✓","greeting":"hi"}`
	if res.Pass || res.Status != 201 || string(res.Body) != want {
		t.Fatalf("got %d %s, want 201 %s", res.Status, res.Body, want)
	}
	if res.Header.Get("Content-Type") != "application/json" || res.Header.Get("X-Powered-By") != "quickjs" {
		t.Fatalf("headers: %v", res.Header)
	}
}

// TestRequestHeadersAndEnv: a request's headers arrive with every value (the engine parses
// them on first use), a synchronous handler works as an async one does, and a VM that served
// one Host's environment sees another's (the environment is sent once per VM and again when
// it changes).
func TestRequestHeadersAndEnv(t *testing.T) {
	f := load(t, `export default {
  fetch(req, env) {
    return new Response([req.headers.get("x-multi"), req.headers.has("X-Empty"), req.headers.get("x-empty"),
      [...req.headers.keys()].join(","), env.NAME, typeof env.KV].join("|"));
  }
}`, function.ModeBackend, function.Limits{MaxInstances: 1})
	h := http.Header{"X-Multi": {"a", "b"}, "X-Empty": {""}, "Accept": {"*/*"}}
	for i, env := range []map[string]string{{"NAME": "one"}, {"NAME": "one"}, {"NAME": "two"}, nil} {
		res, err := f.Invoke(context.Background(), newReq("GET", "/", h), &function.Host{Env: env})
		if err != nil {
			t.Fatal(err)
		}
		want := "a, b|true||accept,x-empty,x-multi|" + env["NAME"] + "|object"
		if env == nil {
			want = "a, b|true||accept,x-empty,x-multi||object"
		}
		if string(res.Body) != want {
			t.Fatalf("invocation %d: body %q, want %q", i, res.Body, want)
		}
	}
}

func TestBackendNullIsError(t *testing.T) {
	f := load(t, seedAuth, function.ModeBackend, function.Limits{})
	_, err := f.Invoke(context.Background(), newReq("GET", "/", http.Header{"Authorization": {"x"}}), nil)
	if err == nil || !strings.Contains(err.Error(), "must return a Response") {
		t.Fatalf("err = %v", err)
	}
}

func TestThrownError(t *testing.T) {
	f := load(t, `export default {
  async fetch(req) { throw new TypeError("bad things"); }
}`, function.ModeBackend, function.Limits{})
	_, err := f.Invoke(context.Background(), newReq("GET", "/", nil), nil)
	if err == nil || !strings.Contains(err.Error(), "TypeError: bad things") || !strings.Contains(err.Error(), "user:fn") {
		t.Fatalf("err = %v", err)
	}
}

func TestFetch(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Up", "yes")
		w.WriteHeader(202)
		io.WriteString(w, r.Method+" "+r.URL.Path+" "+r.Header.Get("X-Token")+" "+string(b))
	}))
	defer up.Close()
	src := `export default {
  async fetch(req, env) {
    const r = await fetch(env.UP + "/echo", { method: "POST", headers: { "x-token": "t1" }, body: "hello" });
    return new Response((await r.text()) + "|" + r.status + "|" + r.headers.get("x-up") + "|" + r.ok);
  }
}`
	f := load(t, src, function.ModeBackend, function.Limits{})
	host := &function.Host{Env: map[string]string{"UP": up.URL},
		Fetch: func(ctx context.Context, req *http.Request) (*http.Response, error) { return up.Client().Do(req) }}
	res, err := f.Invoke(context.Background(), newReq("GET", "/", nil), host)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Body); got != "POST /echo t1 hello|202|yes|true" {
		t.Fatalf("body %q", got)
	}

	// Without the capability the fetch rejects, inside the function.
	f2 := load(t, `export default {
  async fetch(req, env) {
    try { await fetch(env.UP); return new Response("fetched"); }
    catch (e) { return new Response(e.message, { status: 500 }); }
  }
}`, function.ModeBackend, function.Limits{})
	res, err = f2.Invoke(context.Background(), newReq("GET", "/", nil), &function.Host{Env: map[string]string{"UP": up.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 500 || string(res.Body) != function.ErrNoFetch.Error() {
		t.Fatalf("got %d %q", res.Status, res.Body)
	}
}

// mapKV is a small in-memory function.KV.
type mapKV struct {
	mu sync.Mutex
	m  map[string]function.KVValue
}

func (k *mapKV) Get(ctx context.Context, key string) (function.KVValue, bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[key]
	return v, ok, nil
}

func (k *mapKV) Put(ctx context.Context, key string, value []byte, opts function.KVPut) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	v := function.KVValue{Value: value, Metadata: opts.Metadata}
	if opts.TTL > 0 {
		v.Expires = time.Now().Add(opts.TTL)
	}
	k.m[key] = v
	return nil
}

func (k *mapKV) Delete(ctx context.Context, key string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, key)
	return nil
}

func (k *mapKV) List(ctx context.Context, prefix, cursor string, limit int) ([]function.KVKey, string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var names []string
	for n := range k.m {
		if strings.HasPrefix(n, prefix) && n > cursor {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	next := ""
	if len(names) > limit {
		names = names[:limit]
		next = names[limit-1]
	}
	var keys []function.KVKey
	for _, n := range names {
		keys = append(keys, function.KVKey{Name: n, Metadata: k.m[n].Metadata, Expires: k.m[n].Expires})
	}
	return keys, next, nil
}

func TestKV(t *testing.T) {
	f := load(t, `export default {
  async fetch(req, env) {
    await env.KV.put("user:1", JSON.stringify({ name: "ada" }), { metadata: { v: 1 }, expirationTtl: 60 });
    await env.KV.put("user:2", "bob");
    await env.KV.put("other", "x");
    const one = await env.KV.get("user:1", { type: "json" });
    const two = await env.KV.get("user:2");
    const missing = await env.KV.get("nope");
    const page1 = await env.KV.list({ prefix: "user:", limit: 1 });
    const page2 = await env.KV.list({ prefix: "user:", cursor: page1.cursor });
    await env.KV.delete("user:2");
    const gone = await env.KV.get("user:2");
    return Response.json({ one, two, missing, page1, page2: page2.keys.map((k) => k.name), complete: page2.list_complete, gone });
  }
}`, function.ModeBackend, function.Limits{})
	kv := &mapKV{m: map[string]function.KVValue{}}
	res, err := f.Invoke(context.Background(), newReq("GET", "/", nil), &function.Host{KV: kv})
	if err != nil {
		t.Fatal(err)
	}
	body := string(res.Body)
	for _, want := range []string{`"one":{"name":"ada"}`, `"two":"bob"`, `"missing":null`, `"keys":[{"name":"user:1"`, `"metadata":{"v":1}`,
		`"list_complete":false,"cursor":"user:1"`, `"page2":["user:2"]`, `"complete":true`, `"gone":null`} {
		if !strings.Contains(body, want) {
			t.Errorf("body %s lacks %s", body, want)
		}
	}
	if _, ok := kv.m["other"]; !ok || kv.m["user:1"].Expires.IsZero() {
		t.Errorf("store: %+v", kv.m)
	}

	f2 := load(t, `export default { async fetch(req, env) { await env.KV.get("a"); return new Response("x"); } }`, function.ModeBackend, function.Limits{})
	_, err = f2.Invoke(context.Background(), newReq("GET", "/", nil), nil)
	if err == nil || !strings.Contains(err.Error(), function.ErrNoKV.Error()) {
		t.Fatalf("without KV: %v", err)
	}
}

func TestConsoleLog(t *testing.T) {
	f := load(t, `export default {
  async request(req) { console.log("hello", { a: 1 }, 2); console.error("bad"); return null; }
}`, function.ModeFilter, function.Limits{})
	var mu sync.Mutex
	var got []string
	host := &function.Host{Log: func(level slog.Level, msg string) {
		mu.Lock()
		got = append(got, level.String()+" "+msg)
		mu.Unlock()
	}}
	if _, err := f.Invoke(context.Background(), newReq("GET", "/", nil), host); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "\n") != "INFO hello {\"a\":1} 2\nERROR bad" {
		t.Fatalf("logs: %q", got)
	}

	// A failed invocation is logged too.
	g := load(t, `export default { async fetch() { throw new Error("oops"); } }`, function.ModeBackend, function.Limits{})
	got = nil
	if _, err := g.Invoke(context.Background(), newReq("GET", "/", nil), host); err == nil {
		t.Fatal("no error")
	}
	if len(got) != 1 || !strings.HasPrefix(got[0], "ERROR js: Error: oops") {
		t.Fatalf("logs: %q", got)
	}
}

func TestLoadErrors(t *testing.T) {
	_, err := Load(context.Background(), []byte("export default {\n  async fetch(req) {\n    return new Response(;\n  }\n}\n"), function.ModeBackend, function.Limits{})
	if err == nil || !strings.Contains(err.Error(), "SyntaxError") || !strings.Contains(err.Error(), "user:fn:3") {
		t.Fatalf("syntax error: %v", err)
	}
	_, err = Load(context.Background(), []byte("export const x = 1;\n"), function.ModeBackend, function.Limits{})
	if err == nil || !strings.Contains(err.Error(), "no default export") {
		t.Fatalf("no default export: %v", err)
	}
	_, err = Load(context.Background(), []byte("throw new Error('boom at load');\nexport default {}\n"), function.ModeBackend, function.Limits{})
	if err == nil || !strings.Contains(err.Error(), "boom at load") {
		t.Fatalf("throw at load: %v", err)
	}
	_, err = Load(context.Background(), []byte("await new Promise(() => {});\nexport default { fetch() {} }\n"), function.ModeBackend, function.Limits{})
	if err == nil || !strings.Contains(err.Error(), "can never settle") {
		t.Fatalf("top-level await: %v", err)
	}
	start := time.Now()
	_, err = Load(context.Background(), []byte("for (;;) {}\nexport default { fetch() {} }\n"), function.ModeBackend, function.Limits{Timeout: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "interrupted") || time.Since(start) > time.Second {
		t.Fatalf("loop at load: %v after %v", err, time.Since(start))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = Load(ctx, []byte("for (;;) {}\nexport default { fetch() {} }\n"), function.ModeBackend, function.Limits{})
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("loop at load, ctx: %v after %v", err, time.Since(start))
	}
}

func TestTimeoutWhileHealthyServe(t *testing.T) {
	spin := load(t, `export default { async fetch() { for (;;) {} } }`, function.ModeBackend,
		function.Limits{Timeout: 200 * time.Millisecond, MaxInstances: 2})
	healthy := load(t, seedAuth, function.ModeFilter, function.Limits{MaxInstances: 2})

	stop := make(chan struct{})
	var ok, bad atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := healthy.Invoke(context.Background(), newReq("GET", "/", http.Header{"Authorization": {"x"}}), nil)
				if err != nil || !res.Pass {
					t.Errorf("healthy: %v", err)
					bad.Add(1)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	for i := 0; i < 3; i++ {
		start := time.Now()
		_, err := spin.Invoke(context.Background(), newReq("GET", "/", nil), nil)
		if !errors.Is(err, function.ErrTimeout) {
			t.Fatalf("spin: %v", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("spin stopped after %v", d)
		}
	}
	close(stop)
	wg.Wait()
	if bad.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("healthy: %d ok, %d errors", ok.Load(), bad.Load())
	}
}

func TestMemoryCap(t *testing.T) {
	f := load(t, `export default { async fetch() { const a = []; for (;;) a.push("x".repeat(1024) + a.length); } }`,
		function.ModeBackend, function.Limits{MemoryBytes: 16 << 20, Timeout: 10 * time.Second})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := f.Invoke(context.Background(), newReq("GET", "/", nil), nil)
	if !errors.Is(err, function.ErrMemory) {
		t.Fatalf("hog: %v", err)
	}
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 8<<20 {
		t.Errorf("Go heap grew by %d bytes", grew)
	}
	// The pool replaces the VM.
	f2 := load(t, `export default { async fetch() { return new Response("fine"); } }`, function.ModeBackend, function.Limits{MemoryBytes: 16 << 20})
	if res, err := f2.Invoke(context.Background(), newReq("GET", "/", nil), nil); err != nil || string(res.Body) != "fine" {
		t.Fatalf("after: %v", err)
	}
}

func TestNeverSettles(t *testing.T) {
	f := load(t, `export default { async fetch() { await new Promise(() => {}); } }`, function.ModeBackend,
		function.Limits{Timeout: 5 * time.Second})
	start := time.Now()
	_, err := f.Invoke(context.Background(), newReq("GET", "/", nil), nil)
	if err == nil || !strings.Contains(err.Error(), "can never settle") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v", d)
	}

	// A promise that waits on a slow host call is stopped by the timeout.
	slow := load(t, `export default { async fetch(req, env) { await fetch("http://slow.invalid/"); return new Response("x"); } }`,
		function.ModeBackend, function.Limits{Timeout: 200 * time.Millisecond})
	host := &function.Host{Fetch: func(ctx context.Context, req *http.Request) (*http.Response, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	_, err = slow.Invoke(context.Background(), newReq("GET", "/", nil), host)
	if !errors.Is(err, function.ErrTimeout) {
		t.Fatalf("slow fetch: %v", err)
	}
}

func TestClose(t *testing.T) {
	f, err := Load(context.Background(), []byte(seedAuth), function.ModeFilter, function.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Invoke(context.Background(), newReq("GET", "/", nil), nil); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Invoke(context.Background(), newReq("GET", "/", nil), nil); !errors.Is(err, function.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}

	// An invocation in flight ends with ErrClosed.
	g, err := Load(context.Background(), []byte(`export default { async fetch() { for (;;) {} } }`), function.ModeBackend, function.Limits{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := g.Invoke(context.Background(), newReq("GET", "/", nil), nil)
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	g.Close()
	if err := <-errc; !errors.Is(err, function.ErrClosed) {
		t.Fatalf("in flight: %v", err)
	}
}

func TestSurface(t *testing.T) {
	f := load(t, `export default {
  async fetch(req) {
    const out = [];
    const h = new Headers({ "Content-Type": "a" });
    h.append("x-a", "1"); h.append("X-A", "2");
    out.push(h.get("CONTENT-TYPE"), h.get("x-a"), h.has("x-b"), [...h].map(([k, v]) => k + "=" + v).join(","));
    const u = new URL("https://user@Example.com:443/a/../b/c?x=1&y=two%20words#frag");
    out.push(u.href, u.host, u.pathname, u.searchParams.get("y"), u.hash);
    u.searchParams.set("x", "2");
    out.push(u.search, new URL("d?q", "http://h/a/b").href);
    out.push(btoa("hello"), atob("aGVsbG8="));
    out.push(new TextDecoder().decode(new TextEncoder().encode("héllo ✓")), new TextEncoder().encode("é").length);
    const b = new Uint8Array(8); crypto.getRandomValues(b);
    out.push(b.length, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(crypto.randomUUID()));
    const r = Response.redirect("https://x/", 301);
    out.push(r.status, r.headers.get("location"));
    const bin = new Response(new Uint8Array([0, 255, 1]));
    out.push(new Uint8Array(await bin.arrayBuffer()).join("."));
    const hex = (buf) => [...new Uint8Array(buf)].map((x) => x.toString(16).padStart(2, "0")).join("");
    out.push(hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode("abc"))));
    out.push(hex(await crypto.subtle.digest({ name: "sha-1" }, new Uint8Array([0x61, 0x62, 0x63]))));
    out.push((await crypto.subtle.digest("SHA-512", "")).byteLength);
    try { await crypto.subtle.digest("MD5", "x"); out.push("md5?"); } catch (e) { out.push(e.message.includes("unsupported algorithm MD5")); }
    return new Response(out.join("|"));
  }
}`, function.ModeBackend, function.Limits{})
	res, err := f.Invoke(context.Background(), newReq("GET", "/", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The digests are FIPS 180's "abc" examples.
	want := "a|1, 2|false|content-type=a,x-a=1, 2|https://user@example.com/b/c?x=1&y=two%20words#frag|example.com|/b/c|two words|#frag|?x=2&y=two+words|http://h/a/d?q|aGVsbG8=|hello|héllo ✓|2|8|true|301|https://x/|0.255.1" +
		"|ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad|a9993e364706816aba3e25717850c26c9cd0d89d|64|true"
	if got := string(res.Body); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestBinaryResponseAndWaitUntil(t *testing.T) {
	f := load(t, `export default {
  async fetch(req, env, ctx) {
    ctx.waitUntil(env.KV.put("after", "done"));
    return new Response(new Uint8Array([0, 200, 255]));
  }
}`, function.ModeBackend, function.Limits{})
	kv := &mapKV{m: map[string]function.KVValue{}}
	res, err := f.Invoke(context.Background(), newReq("GET", "/", nil), &function.Host{KV: kv})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Body) != "\x00\xc8\xff" {
		t.Fatalf("body %q", res.Body)
	}
	// The answer does not wait for ctx.waitUntil; the VM finishes it afterwards.
	for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
		v, _, _ := kv.Get(context.Background(), "after")
		if string(v.Value) == "done" {
			break
		}
		if time.Since(start) > 2*time.Second {
			t.Fatal("waitUntil did not finish")
		}
	}
}

func BenchmarkInvoke(b *testing.B) {
	f := load(b, seedAuth, function.ModeFilter, function.Limits{})
	h := http.Header{"Authorization": {"Bearer t"}, "Accept": {"*/*"}, "User-Agent": {"bench"}}
	b.ReportAllocs()
	for b.Loop() {
		req := newReq("GET", "/x?y=1", h)
		res, err := f.Invoke(context.Background(), req, nil)
		if err != nil || !res.Pass {
			b.Fatal(err)
		}
	}
}

func TestLimits(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("y", 1000))
	}))
	defer up.Close()
	host := &function.Host{Env: map[string]string{"UP": up.URL},
		Fetch: func(ctx context.Context, req *http.Request) (*http.Response, error) { return up.Client().Do(req) }}
	f := load(t, `export default {
  async fetch(req, env) {
    const out = [];
    for (let i = 0; i < 3; i++) {
      try { out.push((await (await fetch(env.UP)).text()).length); } catch (e) { out.push(e.message); }
    }
    return new Response(out.join("|"));
  }
}`, function.ModeBackend, function.Limits{MaxFetches: 2, MaxFetchBytes: 1500})
	res, err := f.Invoke(context.Background(), newReq("GET", "/", nil), host)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Body); !strings.HasPrefix(got, "1000|fetch ") || !strings.Contains(got, "over 1500 bytes") || !strings.Contains(got, "more than 2 fetches") {
		t.Fatalf("body %q", got)
	}

	// The request body is read up to MaxBodyBytes; a filter that read it passes it on intact.
	g := load(t, `export default {
  async request(req) {
    try { const t = await req.text(); req.headers.set("x-len", String(t.length)); return null; }
    catch (e) { return new Response(e.message.includes("body over the limit") ? "big" : e.message, { status: 413 }); }
  }
}`, function.ModeFilter, function.Limits{MaxBodyBytes: 10})
	req := newReq("POST", "/", nil)
	req.Body = strings.NewReader("0123456789")
	res, err = g.Invoke(context.Background(), req, nil)
	if err != nil || !res.Pass || req.Header.Get("X-Len") != "10" {
		t.Fatalf("small body: %v %+v %v", err, res, req.Header)
	}
	if b, _ := io.ReadAll(req.Body); string(b) != "0123456789" {
		t.Fatalf("body passed on: %q", b)
	}
	req = newReq("POST", "/", nil)
	req.Body = strings.NewReader("0123456789x")
	res, err = g.Invoke(context.Background(), req, nil)
	if err != nil || res.Status != 413 || string(res.Body) != "big" {
		t.Fatalf("large body: %v %+v", err, res)
	}
}

// BenchmarkNewInstance measures a new VM: host functions, the prelude from bytecode, the
// module from source.
func BenchmarkNewInstance(b *testing.B) {
	f, err := Load(context.Background(), []byte(seedAuth), function.ModeFilter, function.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.ReportAllocs()
	for b.Loop() {
		inst, err := f.(*fn).newInstance()
		if err != nil {
			b.Fatal(err)
		}
		inst.close()
	}
}

func TestPoolWaitsHonouringCtx(t *testing.T) {
	release := make(chan struct{})
	host := &function.Host{Fetch: func(ctx context.Context, req *http.Request) (*http.Response, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, errors.New("released")
	}}
	f := load(t, `export default { async fetch() { try { await fetch("http://x.invalid/"); } catch (e) {} return new Response("ok"); } }`,
		function.ModeBackend, function.Limits{MaxInstances: 1, Timeout: 5 * time.Second})
	done := make(chan error, 1)
	go func() {
		_, err := f.Invoke(context.Background(), newReq("GET", "/", nil), host)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := f.Invoke(ctx, newReq("GET", "/", nil), host); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second invocation: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if res, err := f.Invoke(context.Background(), newReq("GET", "/", nil), host); err != nil || string(res.Body) != "ok" {
		t.Fatalf("after: %v", err)
	}
}

func TestStackOverflow(t *testing.T) {
	f := load(t, `function r(n) { return r(n + 1) + 1; }
export default { async fetch() { r(0); } }`, function.ModeBackend, function.Limits{})
	_, err := f.Invoke(context.Background(), newReq("GET", "/", nil), nil)
	if err == nil || !strings.Contains(err.Error(), "stack overflow") {
		t.Fatalf("err = %v", err)
	}
}

func TestTimers(t *testing.T) {
	f := load(t, `export default {
  async fetch() {
    const out = [];
    const cleared = setTimeout(() => out.push("cleared"), 5);
    clearTimeout(cleared);
    await new Promise((r) => setTimeout(() => { out.push("a"); r(); }, 20));
    queueMicrotask(() => out.push("micro"));
    let n = 0;
    await new Promise((r) => { const id = setInterval(() => { out.push("tick" + ++n); if (n === 3) { clearInterval(id); r(); } }, 5); });
    return new Response(out.join(","));
  }
}`, function.ModeBackend, function.Limits{Timeout: 2 * time.Second})
	res, err := f.Invoke(context.Background(), newReq("GET", "/", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Body); got != "a,micro,tick1,tick2,tick3" {
		t.Fatalf("got %q", got)
	}

	// A timer longer than the timeout ends with ErrTimeout.
	g := load(t, `export default { async fetch() { await new Promise((r) => setTimeout(r, 60000)); return new Response("late"); } }`,
		function.ModeBackend, function.Limits{Timeout: 100 * time.Millisecond})
	if _, err := g.Invoke(context.Background(), newReq("GET", "/", nil), nil); !errors.Is(err, function.ErrTimeout) {
		t.Fatalf("long timer: %v", err)
	}
}

func TestModuleTopLevel(t *testing.T) {
	// Host calls while the module loads fail in the function, not in Load; the host
	// function itself is private to the prelude.
	f := load(t, `console.log("loading");
let early = "none";
fetch("http://x.invalid/").catch((e) => { early = e.message; });
export default { async fetch() { return new Response(early + "|" + typeof __host); } }`, function.ModeBackend, function.Limits{})
	res, err := f.Invoke(context.Background(), newReq("GET", "/", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Body); got != "host calls are not available while the module loads|undefined" {
		t.Fatalf("got %q", got)
	}
}

// TestResponseHook: a filter whose default export has response() sees the upstream's head
// and edits it; a throw there is the invocation's error; an upstream failure skips it; and a
// filter without response() offers no hook.
func TestResponseHook(t *testing.T) {
	f := load(t, `let n = 0;
export default {
  async request(req) { req.headers.set("x-seen", "1"); return null; },
  async response(res, req, env, ctx) {
    n++;
    if (req.headers.get("x-mode") === "throw") throw new Error("boom");
    if (req.headers.get("x-mode") === "replace") return new Response(null, { status: 299, headers: { "x-only": "yes" } });
    ctx.waitUntil(Promise.resolve(1));
    res.headers.set("x-upstream-status", String(res.status));
    res.headers.delete("server");
    if (res.status === 500) res.status = 503;
    res.headers.set("x-n", String(n));
  }
}`, function.ModeFilter, function.Limits{MaxInstances: 1})
	for _, tc := range []struct {
		mode   string
		status int
		want   int
		check  func(h http.Header) bool
		err    string
	}{
		{"", 200, 200, func(h http.Header) bool {
			return h.Get("X-Upstream-Status") == "200" && h.Get("Server") == "" && h.Get("Content-Type") == "text/plain" && h.Get("X-N") == "1"
		}, ""},
		{"", 500, 503, func(h http.Header) bool { return h.Get("X-Upstream-Status") == "500" }, ""},
		{"replace", 200, 299, func(h http.Header) bool { return h.Get("X-Only") == "yes" && h.Get("Content-Type") == "" }, ""},
		{"throw", 200, 200, func(h http.Header) bool { return h.Get("Server") == "up" }, "boom"},
	} {
		req := newReq("GET", "/", http.Header{"X-Mode": {tc.mode}})
		res, err := f.Invoke(context.Background(), req, nil)
		if err != nil || !res.Pass || res.Response == nil || req.Header.Get("X-Seen") != "1" {
			t.Fatalf("%s: %+v %v", tc.mode, res, err)
		}
		status, h := tc.status, http.Header{"Server": {"up"}, "Content-Type": {"text/plain"}}
		err = res.Response(context.Background(), &status, h, false)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("%s: err %v, want %q", tc.mode, err, tc.err)
			}
		} else if err != nil {
			t.Fatalf("%s: %v", tc.mode, err)
		}
		if status != tc.want || !tc.check(h) {
			t.Fatalf("%s: %d %v", tc.mode, status, h)
		}
		if err := res.Response(context.Background(), &status, h, false); err == nil {
			t.Fatalf("%s: a second Response call succeeded", tc.mode)
		}
	}
	// No upstream answer: the hook is released without running (the one VM serves again).
	res, err := f.Invoke(context.Background(), newReq("GET", "/", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Response(context.Background(), nil, nil, true); err != nil {
		t.Fatal(err)
	}
	res, err = f.Invoke(context.Background(), newReq("GET", "/", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	status, h := 200, http.Header{}
	if err := res.Response(context.Background(), &status, h, false); err != nil || h.Get("X-N") == "" {
		t.Fatalf("after a failed upstream: %v %v", err, h)
	}

	plain := load(t, seedAuth, function.ModeFilter, function.Limits{})
	res, err = plain.Invoke(context.Background(), newReq("GET", "/", http.Header{"Authorization": {"x"}}), nil)
	if err != nil || !res.Pass || res.Response != nil {
		t.Fatalf("a filter without response(): %+v %v", res, err)
	}
}

// BenchmarkInvokeSync is BenchmarkInvoke with a synchronous handler: the engine cost
// without the async function and its promise job.
func BenchmarkInvokeSync(b *testing.B) {
	f := load(b, "export default { request(req) { return null; } }", function.ModeFilter, function.Limits{})
	h := http.Header{"Authorization": {"Bearer t"}, "Accept": {"*/*"}, "User-Agent": {"bench"}}
	for b.Loop() {
		req := newReq("GET", "/x?y=1", h)
		res, err := f.Invoke(context.Background(), req, nil)
		if err != nil || !res.Pass {
			b.Fatal(err)
		}
	}
}

// BenchmarkInvokeParallel: invocations from two goroutines at once, as under load.
func BenchmarkInvokeParallel(b *testing.B) {
	f := load(b, seedAuth, function.ModeFilter, function.Limits{})
	h := http.Header{"Authorization": {"Bearer t"}, "Accept": {"*/*"}, "User-Agent": {"bench"}}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := newReq("GET", "/x?y=1", h)
			res, err := f.Invoke(context.Background(), req, nil)
			if err != nil || !res.Pass {
				b.Fatal(err)
			}
		}
	})
}

// TestStreamedResponse: a backend answers with a body it makes as it goes; the reader gets
// each chunk while the function still runs, and the end.
func TestStreamedResponse(t *testing.T) {
	f := load(t, `export default {
  async fetch(req) {
    const { readable, writable } = new TransformStream({
      transform(chunk, c) { c.enqueue(chunk.toUpperCase()); },
    });
    const w = writable.getWriter();
    (async () => {
      for (const part of ["one ", "two ", "three"]) {
        await w.write(part);
        await new Promise((r) => setTimeout(r, 100));
      }
      await w.close();
    })();
    return new Response(readable, { headers: { "content-type": "text/plain" } });
  }
}`, function.ModeBackend, function.Limits{MaxInstances: 1})
	start := time.Now()
	res, err := f.Invoke(context.Background(), newReq("GET", "/", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.BodyStream == nil || res.Body != nil || res.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("result %+v", res)
	}
	buf := make([]byte, 64)
	n, err := res.BodyStream.Read(buf)
	if err != nil || string(buf[:n]) != "ONE " {
		t.Fatalf("first chunk %q %v", buf[:n], err)
	}
	if d := time.Since(start); d > 150*time.Millisecond {
		t.Fatalf("the first chunk came after %s: the body was not streamed", d)
	}
	rest, err := io.ReadAll(res.BodyStream)
	if err != nil || string(rest) != "TWO THREE" {
		t.Fatalf("rest %q %v", rest, err)
	}
	res.BodyStream.Close()
	// The VM serves the next request.
	res, err = f.Invoke(context.Background(), newReq("GET", "/", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(res.BodyStream); err != nil || string(b) != "ONE TWO THREE" {
		t.Fatalf("second: %q %v", b, err)
	}
}

// TestStreamedEcho: new Response(request.body) streams the request body back: a chunk the
// client sends comes back before the client sends the next.
func TestStreamedEcho(t *testing.T) {
	f := load(t, `export default { fetch(req) { return new Response(req.body); } }`, function.ModeBackend, function.Limits{})
	pr, pw := io.Pipe()
	req := newReq("POST", "/", nil)
	req.Body = pr
	res, err := f.Invoke(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	for _, part := range []string{"ping 1", "ping 2"} {
		go pw.Write([]byte(part))
		n, err := res.BodyStream.Read(buf)
		if err != nil || string(buf[:n]) != part {
			t.Fatalf("echo of %q: %q %v", part, buf[:n], err)
		}
	}
	pw.Close()
	if b, err := io.ReadAll(res.BodyStream); err != nil || len(b) != 0 {
		t.Fatalf("end: %q %v", b, err)
	}
}

// TestStreamFailures: a stream that errors mid-body and one cut by the timeout end the body
// with an error after what was sent; a reader that closes early stops the function; a
// filter that reads the body as a stream still passes all of it on.
func TestStreamFailures(t *testing.T) {
	f := load(t, `export default {
  async fetch(req) {
    const mode = new URL(req.url).pathname;
    const enc = new TextEncoder();
    let i = 0;
    return new Response(new ReadableStream({
      async pull(c) {
        i++;
        if (mode === "/error" && i === 2) throw new Error("disk on fire");
        if (mode === "/slow" && i === 2) await new Promise(() => {});
        c.enqueue(enc.encode("chunk" + i + ";"));
        if (mode !== "/endless" && i === 3) c.close();
      },
    }));
  }
}`, function.ModeBackend, function.Limits{Timeout: 500 * time.Millisecond, MaxInstances: 1})
	for _, tc := range []struct{ path, body, err string }{
		{"/error", "chunk1;", "disk on fire"},
		{"/slow", "chunk1;", "ended early"},
		{"/ok", "chunk1;chunk2;chunk3;", ""},
	} {
		res, err := f.Invoke(context.Background(), newReq("GET", tc.path, nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(res.BodyStream)
		if string(b) != tc.body || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Fatalf("%s: %q %v, want %q and error %q", tc.path, b, err, tc.body, tc.err)
		}
	}
	res, err := f.Invoke(context.Background(), newReq("GET", "/endless", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if _, err := res.BodyStream.Read(buf); err != nil {
		t.Fatal(err)
	}
	res.BodyStream.Close()
	// The endless stream's VM stops at once and a new one serves (MaxInstances 1 would wait
	// for it otherwise).
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res, err = f.Invoke(ctx, newReq("GET", "/ok", nil), nil)
	if err != nil {
		t.Fatalf("after closing an endless stream: %v", err)
	}
	io.Copy(io.Discard, res.BodyStream)

	g := load(t, `export default {
  async request(req) {
    let n = 0;
    for await (const chunk of req.body) n += chunk.length;
    req.headers.set("x-len", String(n));
    return null;
  }
}`, function.ModeFilter, function.Limits{})
	payload := strings.Repeat("0123456789", 20000) // 200 kB: several chunks
	req := newReq("POST", "/", nil)
	req.Body = strings.NewReader(payload)
	if res, err := g.Invoke(context.Background(), req, nil); err != nil || !res.Pass {
		t.Fatalf("filter: %+v %v", res, err)
	}
	if got, _ := io.ReadAll(req.Body); req.Header.Get("X-Len") != "200000" || string(got) != payload {
		t.Fatalf("filter passed x-len %q and %d bytes", req.Header.Get("X-Len"), len(got))
	}
}

// TestStreamSurface: a Response made from a stream reads whole with text(); clone() tees it;
// pipeThrough transforms it.
func TestStreamSurface(t *testing.T) {
	f := load(t, `export default {
  async fetch() {
    const src = () => new ReadableStream({ start(c) { c.enqueue("a"); c.enqueue(new TextEncoder().encode("b")); c.close(); } });
    const r = new Response(src());
    const c = r.clone();
    const upper = new Response(src().pipeThrough(new TransformStream({ transform(ch, c) { c.enqueue(typeof ch === "string" ? ch.toUpperCase() : ch); } })));
    let used = "";
    const s = src(); s.getReader();
    try { await new Response(s).text(); } catch (e) { used = e.message; }
    return new Response([await r.text(), await c.text(), await upper.text(), used].join("|"));
  }
}`, function.ModeBackend, function.Limits{})
	res, err := f.Invoke(context.Background(), newReq("GET", "/", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Body); got != "ab|ab|Ab|the body has already been read" {
		t.Fatalf("got %q", got)
	}
}
