package wasm

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/function"
)

func TestFilterPassSetsRequestHeader(t *testing.T) {
	f := load(t, "guest", function.ModeFilter, function.Limits{}, WithConfig([]byte("pass")))
	req := newRequest("GET", "/a?b=c", http.Header{"Accept": {"*/*"}}, "")
	res, err := f.Invoke(context.Background(), req, &function.Host{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pass || res.Response != nil {
		t.Fatalf("result %+v, want a pass with no response hook", res)
	}
	if got := req.Header.Get("X-Edge"); got != "seen" {
		t.Errorf("X-Edge = %q, want seen", got)
	}
	if got := req.Header.Get("Accept"); got != "*/*" {
		t.Errorf("Accept = %q, want it untouched", got)
	}
}

func TestFilterRewritesRequest(t *testing.T) {
	f := load(t, "guest", function.ModeFilter, function.Limits{})
	h := mode("rewrite")
	h.Set("X-Remove", "1")
	h.Set("X-Multi", "one")
	req := newRequest("GET", "/orig?x=1", h, "old body")
	res, err := f.Invoke(context.Background(), req, &function.Host{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pass {
		t.Fatalf("result %+v, want a pass", res)
	}
	if req.Method != "POST" || req.URL.RequestURI() != "/rewritten?from=orig?x=1" {
		t.Errorf("request line %s %s", req.Method, req.URL.RequestURI())
	}
	if got := req.Header.Values("X-Multi"); len(got) != 2 || got[1] != "two" {
		t.Errorf("X-Multi = %q", got)
	}
	if _, ok := req.Header["X-Remove"]; ok {
		t.Error("X-Remove is still there")
	}
	if got := readAll(t, req.Body); got != "new body" {
		t.Errorf("body = %q", got)
	}
}

func TestFilterReadsBodyAndPassesIt(t *testing.T) {
	f := load(t, "guest", function.ModeFilter, function.Limits{})
	body := strings.Repeat("b", 5000) // over the guest's buffer: read in chunks
	req := newRequest("POST", "/", mode("peek"), body)
	res, err := f.Invoke(context.Background(), req, &function.Host{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pass || req.Header.Get("X-Body-Len") != "5000" {
		t.Fatalf("result %+v, X-Body-Len %q", res, req.Header.Get("X-Body-Len"))
	}
	if got := readAll(t, req.Body); got != body {
		t.Fatalf("the body passed on is %d bytes, want the 5000 read", len(got))
	}
}

func TestCompilationCacheDir(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the guest twice")
	}
	dir := t.TempDir()
	code := guest(t, "guest")
	for i := range 2 {
		start := time.Now()
		f, err := Load(context.Background(), code, function.ModeFilter, function.Limits{},
			WithCompilationCacheDir(dir), WithConfig([]byte("pass")))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("load %d: %v", i, time.Since(start))
		res, err := f.Invoke(context.Background(), newRequest("GET", "/", nil, ""), &function.Host{})
		if err != nil || !res.Pass {
			t.Fatalf("load %d: %v %+v", i, err, res)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("cache dir: %v %v", entries, err)
	}
}

func TestFilterAuthCheck(t *testing.T) {
	f := load(t, "guest", function.ModeFilter, function.Limits{}, WithConfig([]byte("auth")))
	res, err := f.Invoke(context.Background(), newRequest("GET", "/", nil, ""), &function.Host{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Pass || res.Status != 401 || string(res.Body) != "unauthorized\n" ||
		res.Header.Get("WWW-Authenticate") != `Bearer realm="edge"` {
		t.Fatalf("without Authorization: %+v", res)
	}
	req := newRequest("GET", "/", http.Header{"Authorization": {"Bearer x"}}, "")
	res, err = f.Invoke(context.Background(), req, &function.Host{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pass || req.Header.Get("X-Auth-Checked") != "true" {
		t.Fatalf("with Authorization: %+v, header %v", res, req.Header)
	}
}

func TestBackendAnswersFromRequest(t *testing.T) {
	f := load(t, "guest", function.ModeBackend, function.Limits{}, WithConfig([]byte("echo")))
	req := newRequest("PUT", "/hello?q=1", http.Header{"X-Name": {"gopher"}}, "the body")
	host := &function.Host{Env: map[string]string{"GREETING": "welcome"}}
	res, err := f.Invoke(context.Background(), req, host)
	if err != nil {
		t.Fatal(err)
	}
	want := "PUT /hello?q=1 HTTP/1.1 from 192.0.2.7:4711\n" +
		"hello gopher, welcome\n" +
		"names=Host,X-Name\n" +
		"body=the body\n"
	if res.Pass || res.Status != 200 || string(res.Body) != want || res.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("result %d %v %q, want 200 %q", res.Status, res.Header, res.Body, want)
	}
	// Another environment gets an instance of its own.
	res, err = f.Invoke(context.Background(), newRequest("GET", "/", nil, ""), &function.Host{Env: map[string]string{"GREETING": "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res.Body), ", hi\n") {
		t.Fatalf("body %q, want the new GREETING", res.Body)
	}
}

func TestBackendThatPassesIs502(t *testing.T) {
	f := load(t, "guest", function.ModeBackend, function.Limits{})
	var logged []string
	host := &function.Host{Log: func(_ slog.Level, msg string) { logged = append(logged, msg) }}
	res, err := f.Invoke(context.Background(), newRequest("GET", "/", mode("pass"), ""), host)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pass || res.Status != http.StatusBadGateway || len(logged) != 1 {
		t.Fatalf("result %+v, logged %q", res, logged)
	}
}

func TestBodyLimit(t *testing.T) {
	f := load(t, "guest", function.ModeBackend, function.Limits{MaxBodyBytes: 200}, WithConfig([]byte("echo")))
	_, err := f.Invoke(context.Background(), newRequest("POST", "/", nil, strings.Repeat("x", 201)), &function.Host{})
	if !errors.Is(err, function.ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	res, err := f.Invoke(context.Background(), newRequest("POST", "/", nil, "four"), &function.Host{})
	if err != nil || !strings.Contains(string(res.Body), "body=four") {
		t.Fatalf("after the limit: %v %+v", err, res)
	}
	// The response the guest writes is bounded too.
	_, err = f.Invoke(context.Background(), newRequest("POST", "/", http.Header{"X-Name": {strings.Repeat("n", 200)}}, ""), &function.Host{})
	if !errors.Is(err, function.ErrTooLarge) {
		t.Fatalf("large response: err = %v, want ErrTooLarge", err)
	}
}

func TestFetch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != "POST" || r.Header.Get("X-From") != "edge" || string(b) != "ping" {
			http.Error(w, "bad request from the guest", 400)
			return
		}
		w.Header().Set("X-Up", "yes")
		w.WriteHeader(201)
		io.WriteString(w, "pong")
	}))
	defer srv.Close()
	f := load(t, "guest", function.ModeBackend, function.Limits{MaxFetchBytes: 1 << 10}, WithConfig([]byte("fetch")))
	h := http.Header{"X-Target": {srv.URL + "/up"}}
	host := &function.Host{Fetch: func(ctx context.Context, req *http.Request) (*http.Response, error) {
		return srv.Client().Do(req)
	}}
	res, err := f.Invoke(context.Background(), newRequest("GET", "/", h, ""), host)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 201 || string(res.Body) != "pong" || res.Header.Get("X-Upstream") != "yes" {
		t.Fatalf("with fetch: %d %v %q", res.Status, res.Header, res.Body)
	}

	res, err = f.Invoke(context.Background(), newRequest("GET", "/", h, ""), &function.Host{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 502 || string(res.Body) != "edgefunc: capability not enabled" {
		t.Fatalf("without fetch: %d %q", res.Status, res.Body)
	}

	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 4<<10))
	}))
	defer big.Close()
	h.Set("X-Target", big.URL)
	host.Fetch = func(ctx context.Context, req *http.Request) (*http.Response, error) { return big.Client().Do(req) }
	res, err = f.Invoke(context.Background(), newRequest("GET", "/", h, ""), host)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 502 || string(res.Body) != "edgefunc: limit reached" {
		t.Fatalf("over MaxFetchBytes: %d %q", res.Status, res.Body)
	}

	// MaxFetches counts per invocation.
	f = load(t, "guest", function.ModeBackend, function.Limits{MaxFetches: 1})
	h.Set("X-Mode", "fetch-twice")
	h.Set("X-Target", srv.URL)
	fetches := 0
	host.Fetch = func(ctx context.Context, req *http.Request) (*http.Response, error) {
		fetches++
		return srv.Client().Do(req)
	}
	for range 2 {
		res, err = f.Invoke(context.Background(), newRequest("GET", "/", h, ""), host)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != 502 || string(res.Body) != "fetch 1: edgefunc: limit reached" {
			t.Fatalf("over MaxFetches: %d %q", res.Status, res.Body)
		}
	}
	if fetches != 2 {
		t.Errorf("%d fetches reached the host, want one per invocation", fetches)
	}
}

// memKV is a map-backed function.KV.
type memKV struct {
	mu sync.Mutex
	m  map[string]function.KVValue
}

func (kv *memKV) Get(_ context.Context, key string) (function.KVValue, bool, error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	v, ok := kv.m[key]
	return v, ok, nil
}

func (kv *memKV) Put(_ context.Context, key string, value []byte, opts function.KVPut) error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if kv.m == nil {
		kv.m = map[string]function.KVValue{}
	}
	v := function.KVValue{Value: value, Metadata: opts.Metadata}
	if opts.TTL > 0 {
		v.Expires = time.Now().Add(opts.TTL)
	}
	kv.m[key] = v
	return nil
}

func (kv *memKV) Delete(_ context.Context, key string) error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	delete(kv.m, key)
	return nil
}

func (kv *memKV) List(context.Context, string, string, int) ([]function.KVKey, string, error) {
	return nil, "", errors.New("memKV: no List")
}

func TestKV(t *testing.T) {
	f := load(t, "guest", function.ModeBackend, function.Limits{}, WithConfig([]byte("kv")))
	value := strings.Repeat("v", 5000) // over the guest's first buffer: it asks again
	h := http.Header{"X-Key": {"greeting"}, "X-Value": {value}}
	kv := &memKV{}
	res, err := f.Invoke(context.Background(), newRequest("GET", "/", h, ""), &function.Host{KV: kv})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 200 || string(res.Body) != value || res.Header.Get("X-After-Delete") != "false <nil>" {
		t.Fatalf("kv: %d %v %.40q", res.Status, res.Header, res.Body)
	}
	if len(kv.m) != 0 {
		t.Errorf("store after delete: %v", kv.m)
	}
	res, err = f.Invoke(context.Background(), newRequest("GET", "/", h, ""), &function.Host{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 502 || string(res.Body) != "put: edgefunc: capability not enabled" {
		t.Fatalf("without kv: %d %q", res.Status, res.Body)
	}
}

func TestLogAndStdout(t *testing.T) {
	f := load(t, "guest", function.ModeFilter, function.Limits{})
	var mu sync.Mutex
	var lines []string
	host := &function.Host{Log: func(l slog.Level, msg string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, l.String()+" "+msg)
	}}
	if _, err := f.Invoke(context.Background(), newRequest("GET", "/", mode("log"), ""), host); err != nil {
		t.Fatal(err)
	}
	if strings.Join(lines, "|") != "WARN from the guest|INFO to stdout" {
		t.Fatalf("logged %q", lines)
	}
}

func TestTimeoutWhileOthersServe(t *testing.T) {
	f := load(t, "guest", function.ModeFilter, function.Limits{Timeout: 200 * time.Millisecond, MaxInstances: 4})
	// Warm an instance, so the loop's timer does not include instantiation.
	if _, err := f.Invoke(context.Background(), newRequest("GET", "/", mode("pass"), ""), &function.Host{}); err != nil {
		t.Fatal(err)
	}
	var done atomic.Bool
	var served atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done.Load() {
				req := newRequest("GET", "/", mode("pass"), "")
				res, err := f.Invoke(context.Background(), req, &function.Host{})
				if err != nil || !res.Pass || req.Header.Get("X-Edge") != "seen" {
					errs <- errors.Join(err, errors.New("a healthy invocation failed"))
					return
				}
				served.Add(1)
			}
		}()
	}
	start := time.Now()
	_, err := f.Invoke(context.Background(), newRequest("GET", "/", mode("loop"), ""), &function.Host{})
	elapsed := time.Since(start)
	done.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if !errors.Is(err, function.ErrTimeout) {
		t.Fatalf("loop ended with %v, want ErrTimeout", err)
	}
	if elapsed < 200*time.Millisecond || elapsed > 3*time.Second {
		t.Errorf("loop stopped after %v, want about 200ms", elapsed)
	}
	if served.Load() == 0 {
		t.Error("no healthy invocation completed while the loop ran")
	}
	t.Logf("loop stopped after %v; %d healthy invocations meanwhile", elapsed, served.Load())
	// The timed-out instance was discarded; the function still serves.
	if _, err := f.Invoke(context.Background(), newRequest("GET", "/", mode("pass"), ""), &function.Host{}); err != nil {
		t.Fatal(err)
	}
}

func TestCallerCancellation(t *testing.T) {
	f := load(t, "guest", function.ModeFilter, function.Limits{Timeout: 10 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := f.Invoke(ctx, newRequest("GET", "/", mode("loop"), ""), &function.Host{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestMemoryCap(t *testing.T) {
	f := load(t, "guest", function.ModeFilter, function.Limits{MemoryBytes: 48 << 20, Timeout: 10 * time.Second})
	_, err := f.Invoke(context.Background(), newRequest("GET", "/", mode("hog"), ""), &function.Host{})
	if !errors.Is(err, function.ErrMemory) {
		t.Fatalf("hog ended with %v, want ErrMemory", err)
	}
	t.Logf("hog: %v", err)
	if _, err := f.Invoke(context.Background(), newRequest("GET", "/", mode("pass"), ""), &function.Host{}); err != nil {
		t.Fatalf("after the hog: %v", err)
	}
}

func TestTrap(t *testing.T) {
	f := load(t, "guest", function.ModeFilter, function.Limits{MaxInstances: 1})
	_, err := f.Invoke(context.Background(), newRequest("GET", "/", mode("trap"), ""), &function.Host{})
	if err == nil || errors.Is(err, function.ErrTimeout) || !strings.Contains(err.Error(), "nil map") {
		t.Fatalf("trap ended with %v, want the guest's panic", err)
	}
	// The instance was discarded and its slot freed.
	if _, err := f.Invoke(context.Background(), newRequest("GET", "/", mode("pass"), ""), &function.Host{}); err != nil {
		t.Fatalf("after the trap: %v", err)
	}
}

func TestResponseHook(t *testing.T) {
	f := load(t, "respguest", function.ModeFilter, function.Limits{MaxInstances: 1})
	req := newRequest("GET", "/", nil, "")
	res, err := f.Invoke(context.Background(), req, &function.Host{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pass || res.Response == nil || req.Header.Get("X-Edge") != "request" {
		t.Fatalf("result %+v, want a pass with a response hook", res)
	}
	// The instance is held until Response: another invocation waits, as long as ctx allows.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := f.Invoke(ctx, newRequest("GET", "/", nil, ""), &function.Host{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second invocation: %v, want it to wait for the instance", err)
	}
	status := 404
	header := http.Header{"Server": {"upstream"}, "Content-Type": {"text/html"}}
	if err := res.Response(context.Background(), &status, header, false); err != nil {
		t.Fatal(err)
	}
	if status != 410 || header.Get("X-Upstream-Status") != "404" || header.Get("Server") != "" || header.Get("Content-Type") != "text/html" {
		t.Fatalf("after handle_response: %d %v", status, header)
	}
	if err := res.Response(context.Background(), &status, header, false); err == nil {
		t.Error("a second Response call succeeded")
	}
	// The upstream failed: handle_response sees is_error and the instance is returned.
	res, err = f.Invoke(context.Background(), newRequest("GET", "/", nil, ""), &function.Host{})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Response(context.Background(), nil, nil, true); err != nil {
		t.Fatal(err)
	}
}

func TestBufferResponseFeatureOffersResponse(t *testing.T) {
	f := load(t, "guest", function.ModeFilter, function.Limits{MaxInstances: 1}, WithConfig([]byte("features")))
	for range 2 {
		res, err := f.Invoke(context.Background(), newRequest("GET", "/", nil, ""), &function.Host{})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Pass || res.Response == nil {
			t.Fatalf("result %+v, want a pass with a response hook", res)
		}
		status := 204
		if err := res.Response(context.Background(), &status, http.Header{}, false); err != nil || status != 204 {
			t.Fatalf("Response: %v, status %d", err, status)
		}
	}
}

func TestClose(t *testing.T) {
	f, err := Load(context.Background(), guest(t, "guest"), function.ModeFilter,
		function.Limits{Timeout: 10 * time.Second}, WithCompilationCache(guestCache))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Invoke(context.Background(), newRequest("GET", "/", mode("pass"), ""), &function.Host{}); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := f.Invoke(context.Background(), newRequest("GET", "/", mode("loop"), ""), &function.Host{})
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, function.ErrClosed) {
			t.Fatalf("in-flight invocation ended with %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the invocation in flight")
	}
	if _, err := f.Invoke(context.Background(), newRequest("GET", "/", mode("pass"), ""), &function.Host{}); !errors.Is(err, function.ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestLoadRefusesModuleWithoutHandler(t *testing.T) {
	// The smallest valid module: magic and version, nothing exported.
	empty := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	if _, err := Load(context.Background(), empty, function.ModeFilter, function.Limits{}); !errors.Is(err, ErrNoHandler) {
		t.Fatalf("err = %v, want ErrNoHandler", err)
	}
	if _, err := Load(context.Background(), []byte("not wasm"), function.ModeFilter, function.Limits{}); err == nil {
		t.Fatal("garbage loaded")
	}
}

func BenchmarkInvoke(b *testing.B) {
	f := load(b, "guest", function.ModeFilter, function.Limits{}, WithConfig([]byte("pass")))
	host := &function.Host{}
	ctx := context.Background()
	req := newRequest("GET", "/bench?x=1", http.Header{"Accept": {"*/*"}}, "")
	if _, err := f.Invoke(ctx, req, host); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := f.Invoke(ctx, req, host)
		if err != nil || !res.Pass {
			b.Fatal(err)
		}
	}
}
