package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"apoxy.dev/apoxy/internal/edgetest"
)

// opaLike is an external authorization server written against Envoy's v3 proto, as an
// OPA-Envoy plugin would be: alice passes with a tenant header, bob is denied, /slow never
// answers in time.
type opaLike struct {
	authv3.UnimplementedAuthorizationServer
	calls atomic.Int64
	mu    sync.Mutex
	last  *authv3.CheckRequest
}

func (s *opaLike) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	s.calls.Add(1)
	s.mu.Lock()
	s.last = req
	s.mu.Unlock()
	h := req.GetAttributes().GetRequest().GetHttp()
	if strings.HasPrefix(h.GetPath(), "/slow") {
		select {
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
			// Answering OK here could beat the gateway's own deadline by a hair.
			return nil, ctx.Err()
		}
	}
	set := func(k, v string) *corev3.HeaderValueOption {
		return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}, AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}
	}
	switch h.GetHeaders()["x-user-id"] {
	case "alice":
		return &authv3.CheckResponse{Status: &status.Status{Code: int32(codes.OK)}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers: []*corev3.HeaderValueOption{set("x-tenant-id", "t-1"), set("host", "evil.example"), set("x-not-listed", "1"), set("transfer-encoding", "chunked")}}}}, nil
	default:
		return &authv3.CheckResponse{Status: &status.Status{Code: int32(codes.PermissionDenied)}, HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden}, Body: "no payments for you", Headers: []*corev3.HeaderValueOption{set("x-reason", "not-alice")}}}}, nil
	}
}

func (s *opaLike) lastRequest() *authv3.CheckRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Design §4.6 and §5 cases 89, 93, 94, 95: JWT first, then the OPA-style gRPC service, which
// sees the verified x-user-id, the context extensions and the body; its allow may set only
// headersToUpstream (never Host or hop-by-hop headers), its denial reaches the client as it
// said, a request JWT refused never reaches it, and a slow or absent service gives
// statusOnError (FailClosed).
func TestAuthPolicyExtAuthzGRPC(t *testing.T) {
	ln := echoServer(t, "127.0.0.26:0", "payments", nil)
	ca := newCA(t)
	auth0 := newIssuer(t, "https://example.eu.auth0.com/", "a1")
	cert := ca.issue(t, "example.eu.auth0.com")
	serve(t, "127.0.0.27:443", &cert, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(auth0.jwks()) }))
	opa := &opaLike{}
	gl, err := net.Listen("tcp", "127.0.0.25:9191")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	authv3.RegisterAuthorizationServer(gs, opa)
	go gs.Serve(gl)
	t.Cleanup(gs.Stop)
	e := edgetest.Start(t, edgetest.Options{RootCAs: ca.pool, Hosts: map[string][]string{
		"payments.internal.example.com": {"127.0.0.26"}, "example.eu.auth0.com": {"127.0.0.27"}, "opa.internal.example.com": {"127.0.0.25"}}})
	e.Apply(example(t, "4.6-payments-authz.yaml", portOf(ln)))
	alice := auth0.token(t, map[string]any{"sub": "alice"})
	e.WaitFor("policy in force", func() error {
		if r, _ := call(t, e, "GET", "payments.example.com", "/"); r.StatusCode != 401 {
			return fmt.Errorf("no token: %d", r.StatusCode)
		}
		if r, b := call(t, e, "GET", "payments.example.com", "/", "Authorization", "Bearer "+alice); r.StatusCode != 200 {
			return fmt.Errorf("alice: %d %s", r.StatusCode, b)
		}
		return nil
	})
	calls := opa.calls.Load()
	if r, _ := call(t, e, "GET", "payments.example.com", "/", "Authorization", "Bearer garbage"); r.StatusCode != 401 || opa.calls.Load() != calls {
		t.Errorf("a request JWT refuses reached ext authz: %d, calls %d -> %d", r.StatusCode, calls, opa.calls.Load())
	}

	req, _ := http.NewRequest("POST", "http://"+e.HTTPAddr+"/pay?x=1", strings.NewReader(`{"amount":5}`))
	req.Host = "payments.example.com"
	req.Header.Set("Authorization", "Bearer "+alice)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Tenant-Id", "forged")
	req.Header.Set("X-User-Id", "mallory")
	req.Header.Set("Cookie", "secret=1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(resp)
	if resp.StatusCode != 200 {
		t.Fatalf("alice POST: %d %s", resp.StatusCode, body)
	}
	ec := echoOf(t, resp, body)
	up := http.Header(ec.Headers)
	if up.Get("X-Tenant-Id") != "t-1" || up.Get("X-Not-Listed") != "" || ec.Host != "payments.example.com" || up.Get("X-User-Id") != "alice" || ec.Body != len(`{"amount":5}`) {
		t.Errorf("upstream: host %q body %d headers %v", ec.Host, ec.Body, up)
	}
	cr := opa.lastRequest().GetAttributes()
	hh := cr.GetRequest().GetHttp()
	if cr.GetContextExtensions()["package"] != "payments.authz" || hh.GetHeaders()["x-user-id"] != "alice" || hh.GetHeaders()["cookie"] != "" ||
		hh.GetHeaders()["x-tenant-id"] != "" || hh.GetBody() != `{"amount":5}` || hh.GetPath() != "/pay?x=1" || hh.GetMethod() != "POST" {
		t.Errorf("check request: ext %v, http %v", cr.GetContextExtensions(), hh)
	}

	bob := auth0.token(t, map[string]any{"sub": "bob"})
	r, b := call(t, e, "GET", "payments.example.com", "/", "Authorization", "Bearer "+bob)
	if r.StatusCode != 403 || string(b) != "no payments for you" || r.Header.Get("X-Reason") != "not-alice" {
		t.Errorf("bob: %d %q %v", r.StatusCode, b, r.Header)
	}
	e.WaitFor("Healthy", func() error {
		if st, reason, msg := kindCondition(e, "AuthPolicy", "payments-authz", "Healthy"); st != "True" {
			return fmt.Errorf("Healthy %s %s %q", st, reason, msg)
		}
		return nil
	})
	start := time.Now()
	if r, _ := call(t, e, "GET", "payments.example.com", "/slow", "Authorization", "Bearer "+alice); r.StatusCode != 503 || time.Since(start) > 1500*time.Millisecond {
		t.Errorf("slow service: %d after %v, want 503 at the 500ms timeout", r.StatusCode, time.Since(start))
	}
	gs.Stop()
	if r, _ := call(t, e, "GET", "payments.example.com", "/", "Authorization", "Bearer "+alice); r.StatusCode != 503 {
		t.Errorf("service down: %d, want statusOnError 503", r.StatusCode)
	}
	// Case 93: Healthy flips, naming the failure mode in force.
	e.WaitFor("Healthy=False", func() error {
		if st, reason, msg := kindCondition(e, "AuthPolicy", "payments-authz", "Healthy"); st != "False" || reason != "ExtAuthUnavailable" || !strings.Contains(msg, "fail closed: requests get 503") {
			return fmt.Errorf("Healthy %s %s %q", st, reason, msg)
		}
		return nil
	})
}

// §5 cases 90-93 in HTTP mode: only 200 allows; a 302 reaches the client with its Location;
// pathPrefix is prepended; every header is sent when headersToAuthz is empty; a body of
// exactly maxBytes is sent, one more byte is 413; FailOpen passes when the service is down
// and the access log says so.
func TestAuthPolicyExtAuthzHTTP(t *testing.T) {
	ln := echoServer(t, "127.0.0.28:0", "app", nil)
	var mu sync.Mutex
	var seen *http.Request
	var seenBody string
	authz, err := net.Listen("tcp", "127.0.0.29:0")
	if err != nil {
		t.Fatal(err)
	}
	authzSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := readAll(&http.Response{Body: r.Body})
		mu.Lock()
		seen, seenBody = r, string(b)
		mu.Unlock()
		switch {
		case strings.HasSuffix(r.URL.Path, "/login-first"):
			w.Header().Set("Location", "https://login.example.com/?next=app")
			w.WriteHeader(302)
		case r.Header.Get("X-Key") == "ok":
			w.Header().Set("X-Tenant", "t-9")
			w.WriteHeader(200)
		default:
			w.WriteHeader(401)
			w.Write([]byte("who are you"))
		}
	})}
	go authzSrv.Serve(authz)
	t.Cleanup(func() { authzSrv.Close() })
	var logs strings.Builder
	var logMu sync.Mutex
	e := edgetest.Start(t, edgetest.Options{AccessLog: writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	}), Hosts: map[string][]string{"app.internal.example.com": {"127.0.0.28"}, "authz.internal.example.com": {"127.0.0.29"}}})
	policy := func(failure string) string {
		return fmt.Sprintf(`apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: app}
spec: {endpoints: [{fqdn: app.internal.example.com}]}
---
apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: authz}
spec: {endpoints: [{fqdn: authz.internal.example.com}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: app}
spec:
  parentRefs: [{name: default}]
  hostnames: [app.example.com]
  rules: [{backendRefs: [{group: core.apoxy.dev, kind: Backend, name: app, port: %s}]}]
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: AuthPolicy
metadata: {name: app-authz}
spec:
  targetRefs: [{group: gateway.apoxy.dev, kind: HTTPRoute, name: app}]
  extAuth:
    http:
      backendRef: {group: core.apoxy.dev, kind: Backend, name: authz, port: %s}
      pathPrefix: /check
    headersToUpstream: [x-tenant]
    includeBody: {maxBytes: 8}
    failureMode: %s
`, portOf(ln), portOf(authz), failure)
	}
	e.Apply(policy("FailClosed"))
	e.WaitFor("authz in force", func() error {
		if r, _ := call(t, e, "GET", "app.example.com", "/x"); r.StatusCode != 401 {
			return fmt.Errorf("%d", r.StatusCode)
		}
		return nil
	})
	r, b := call(t, e, "GET", "app.example.com", "/x")
	if string(b) != "who are you" {
		t.Errorf("denial body %q", b)
	}
	r, _ = call(t, e, "GET", "app.example.com", "/login-first")
	if r.StatusCode != 302 || r.Header.Get("Location") != "https://login.example.com/?next=app" {
		t.Errorf("302 relayed: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	post := func(body string) (*http.Response, []byte) {
		req, _ := http.NewRequest("POST", "http://"+e.HTTPAddr+"/a/b?q=1", strings.NewReader(body))
		req.Host = "app.example.com"
		req.Header.Set("X-Key", "ok")
		req.Header.Set("X-Anything", "sent too")
		req.Header.Set("X-Tenant", "forged")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, readAll(resp)
	}
	r, b = post("12345678")
	if r.StatusCode != 200 {
		t.Fatalf("allowed POST: %d %s", r.StatusCode, b)
	}
	if ec := echoOf(t, r, b); http.Header(ec.Headers).Get("X-Tenant") != "t-9" || ec.Body != 8 {
		t.Errorf("upstream: %v body %d", ec.Headers, ec.Body)
	}
	mu.Lock()
	if seen.URL.RequestURI() != "/check/a/b?q=1" || seen.Method != "POST" || seen.Header.Get("X-Anything") != "sent too" || seen.Header.Get("X-Tenant") != "" || seenBody != "12345678" {
		t.Errorf("check request: %s %s %v body %q", seen.Method, seen.URL.RequestURI(), seen.Header, seenBody)
	}
	mu.Unlock()
	if r, _ := post("123456789"); r.StatusCode != 413 {
		t.Errorf("body over maxBytes: %d, want 413", r.StatusCode)
	}

	authzSrv.Close() // connections included
	if r, _ := call(t, e, "GET", "app.example.com", "/x", "X-Key", "ok"); r.StatusCode != 403 {
		t.Errorf("FailClosed with the service down: %d, want statusOnError 403", r.StatusCode)
	}
	e.Apply(policy("FailOpen"))
	e.WaitFor("fail open", func() error {
		if r, _ := call(t, e, "GET", "app.example.com", "/open"); r.StatusCode != 200 {
			return fmt.Errorf("%d", r.StatusCode)
		}
		return nil
	})
	e.WaitFor("access log marks it", func() error {
		logMu.Lock()
		defer logMu.Unlock()
		if !strings.Contains(logs.String(), `"auth":"ext_authz:fail_open:unavailable"`) {
			return fmt.Errorf("no fail_open in the access log")
		}
		return nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
