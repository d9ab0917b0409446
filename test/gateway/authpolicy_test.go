package gateway

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"apoxy.dev/apoxy/internal/edgetest"
	"apoxy.dev/apoxy/internal/proxy/ratelimit"
)

// htpasswdLine makes a bcrypt line with Debian's htpasswd (apache2-utils), as users would.
func htpasswdLine(t *testing.T, user, pw string) string {
	t.Helper()
	out, err := exec.Command("htpasswd", "-nbB", "-C", "5", user, pw).Output()
	if err != nil {
		t.Skipf("htpasswd (apache2-utils) not installed: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func echoOf(t *testing.T, r *http.Response, body []byte) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("%d %s: %v", r.StatusCode, body, err)
	}
	return e
}

func call(t *testing.T, e *edgetest.Env, method, host, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+e.HTTPAddr+path, nil)
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, host, path, err)
	}
	return resp, readAll(resp)
}

// noFollow returns redirects as they are.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func readAll(resp *http.Response) []byte {
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}

func basicHeader(user, pw string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pw)
	return r.Header.Get("Authorization")
}

// Design §4.5 (htpasswd on /admin) and §5 cases 86-87: the admin rule asks for credentials,
// the public rule does not; the user name goes upstream, the credentials do not; a Secret
// updated with a bad line keeps the old users and says which line is bad; a deleted Secret
// fails closed.
func TestAuthPolicyBasicAuth(t *testing.T) {
	ln := echoServer(t, "127.0.0.21:0", "site", nil)
	e := edgetest.Start(t, edgetest.Options{Hosts: map[string][]string{"site.internal.example.com": {"127.0.0.21"}}})
	doc := example(t, "4.5-admin-basic.yaml", portOf(ln))
	alice := htpasswdLine(t, "alice", "wonder land")
	doc = strings.Replace(doc, "alice:$2y$10$REPLACE_WITH_A_REAL_BCRYPT_HASH_FROM_htpasswd_-B", alice, 1)
	e.Apply(doc)
	e.WaitFor("policy accepted", func() error {
		if st, reason, msg := kindCondition(e, "AuthPolicy", "admin-basic", "ResolvedRefs"); st != "True" {
			return fmt.Errorf("ResolvedRefs %s %s %q", st, reason, msg)
		}
		if r, _ := call(t, e, "GET", "www.example.com", "/admin"); r.StatusCode != 401 {
			return fmt.Errorf("/admin without credentials: %d", r.StatusCode)
		}
		return nil
	})
	if st, reason, _ := kindCondition(e, "AuthPolicy", "admin-basic", "Accepted"); st != "True" || reason != "Accepted" {
		t.Errorf("Accepted %s %s", st, reason)
	}
	r, _ := call(t, e, "GET", "www.example.com", "/admin")
	if got := r.Header.Get("Www-Authenticate"); got != `Basic realm="Admin", charset="UTF-8"` {
		t.Errorf("challenge %q", got)
	}
	if r, _ := call(t, e, "GET", "www.example.com", "/admin", "Authorization", basicHeader("alice", "wrong")); r.StatusCode != 401 {
		t.Errorf("wrong password: %d", r.StatusCode)
	}
	r, body := call(t, e, "GET", "www.example.com", "/admin/x", "Authorization", basicHeader("alice", "wonder land"), "X-Auth-User", "mallory")
	if r.StatusCode != 200 {
		t.Fatalf("good credentials: %d %s", r.StatusCode, body)
	}
	if ec := echoOf(t, r, body); http.Header(ec.Headers).Get("X-Auth-User") != "alice" || http.Header(ec.Headers).Get("Authorization") != "" {
		t.Errorf("upstream saw x-auth-user %q, authorization %q", http.Header(ec.Headers).Get("X-Auth-User"), http.Header(ec.Headers).Get("Authorization"))
	}
	if r, _ := call(t, e, "GET", "www.example.com", "/public"); r.StatusCode != 200 {
		t.Errorf("public rule: %d", r.StatusCode)
	}

	// A bad line: refused whole, the old users stay valid, status names the line.
	e.Apply(strings.Replace(`apiVersion: v1
kind: Secret
metadata: {name: admin-users}
type: Opaque
stringData:
  .htpasswd: |
    ALICE
    bob:hunter2
`, "ALICE", alice, 1))
	e.WaitFor("InvalidSecret reported", func() error {
		if st, reason, msg := kindCondition(e, "AuthPolicy", "admin-basic", "ResolvedRefs"); st != "False" || reason != "InvalidSecret" || !strings.Contains(msg, "line 2") {
			return fmt.Errorf("ResolvedRefs %s %s %q", st, reason, msg)
		}
		return nil
	})
	if _, _, msg := kindCondition(e, "AuthPolicy", "admin-basic", "ResolvedRefs"); strings.Contains(msg, "hunter2") {
		t.Errorf("status leaks the file's content: %q", msg)
	}
	if r, _ := call(t, e, "GET", "www.example.com", "/admin", "Authorization", basicHeader("alice", "wonder land")); r.StatusCode != 200 {
		t.Errorf("after a bad update, the last good users: %d", r.StatusCode)
	}

	// Deleted: SecretNotFound, and the rule fails closed.
	e.Delete("v1", "Secret", "admin-users")
	e.WaitFor("fails closed", func() error {
		if r, _ := call(t, e, "GET", "www.example.com", "/admin", "Authorization", basicHeader("alice", "wonder land")); r.StatusCode != 500 {
			return fmt.Errorf("%d", r.StatusCode)
		}
		if st, reason, _ := kindCondition(e, "AuthPolicy", "admin-basic", "ResolvedRefs"); st != "False" || reason != "SecretNotFound" {
			return fmt.Errorf("ResolvedRefs %s %s", st, reason)
		}
		return nil
	})
}

// Design §4.7 and §5 cases 96-99: preflights are answered by the gateway (never forwarded),
// 403 for a disallowed origin; actual requests are decorated, with the origin echoed when
// credentials are allowed.
func TestAuthPolicyCORS(t *testing.T) {
	var hits atomic.Int64
	ln := echoServer(t, "127.0.0.22:0", "api", &hits)
	e := edgetest.Start(t, edgetest.Options{Hosts: map[string][]string{"api.internal.example.com": {"127.0.0.22"}}})
	e.Apply(example(t, "4.7-api-cors.yaml", portOf(ln)))
	e.WaitFor("preflight answered by the policy", func() error {
		r, _ := call(t, e, "OPTIONS", "api.example.com", "/v1", "Origin", "https://app.example.com", "Access-Control-Request-Method", "PUT",
			"Access-Control-Request-Headers", "authorization, content-type")
		if r.StatusCode != 204 {
			return fmt.Errorf("%d", r.StatusCode)
		}
		// And the backend's endpoints are in the data plane (the preflight needs none).
		if r, _ := call(t, e, "GET", "api.example.com", "/v1", "Origin", "https://app.example.com"); r.StatusCode != 200 {
			return fmt.Errorf("actual request %d", r.StatusCode)
		}
		return nil
	})
	hits.Store(0)
	r, _ := call(t, e, "OPTIONS", "api.example.com", "/v1", "Origin", "https://pr-7.preview.example.com", "Access-Control-Request-Method", "PATCH")
	if h := r.Header; r.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != "https://pr-7.preview.example.com" || h.Get("Access-Control-Max-Age") != "600" ||
		h.Get("Access-Control-Allow-Credentials") != "true" || h.Get("Vary") != "Origin" {
		t.Errorf("preflight: %d %v", r.StatusCode, h)
	}
	r, _ = call(t, e, "OPTIONS", "api.example.com", "/v1", "Origin", "https://evil.example.net", "Access-Control-Request-Method", "GET")
	if r.StatusCode != 403 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("disallowed preflight: %d %v", r.StatusCode, r.Header)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("preflights reached the backend %d times", n)
	}
	r, _ = call(t, e, "GET", "api.example.com", "/v1", "Origin", "https://app.example.com")
	if r.StatusCode != 200 || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || r.Header.Get("Access-Control-Expose-Headers") == "" {
		t.Errorf("actual request: %d %v", r.StatusCode, r.Header)
	}
}

type testIssuer struct {
	iss string
	key *rsa.PrivateKey
	kid string
}

func newIssuer(t *testing.T, iss, kid string) *testIssuer {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &testIssuer{iss: iss, key: key, kid: kid}
}

func (i *testIssuer) jwks() []byte {
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &i.key.PublicKey, KeyID: i.kid, Algorithm: "RS256", Use: "sig"}}})
	return b
}

func (i *testIssuer) token(t *testing.T, claims map[string]any) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: i.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", i.kid))
	if err != nil {
		t.Fatal(err)
	}
	c := map[string]any{"iss": i.iss, "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()}
	for k, v := range claims {
		c[k] = v
	}
	tok, err := josejwt.Signed(sig).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Design §4.3 and §5 cases 64, 67, 69, 70: tokens of two issuers (JWKS served over HTTPS,
// one reached through a Backend), claims to headers (a client-sent one stripped), the token
// removed (forwardToken: false), and 401 with WWW-Authenticate for a missing, foreign,
// expired or wrong-audience token.
func TestAuthPolicyJWT(t *testing.T) {
	ln := echoServer(t, "127.0.0.23:0", "api", nil)
	ca := newCA(t)
	auth0 := newIssuer(t, "https://example.eu.auth0.com/", "a1")
	kc := newIssuer(t, "https://sso.internal.example.com/realms/staff", "k1")
	var fetches atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) { fetches.Add(1); w.Write(auth0.jwks()) })
	mux.HandleFunc("/realms/staff/protocol/openid-connect/certs", func(w http.ResponseWriter, r *http.Request) { w.Write(kc.jwks()) })
	cert := ca.issue(t, "example.eu.auth0.com", "sso.internal.example.com")
	serve(t, "127.0.0.24:443", &cert, mux)
	e := edgetest.Start(t, edgetest.Options{RootCAs: ca.pool, Hosts: map[string][]string{
		"api.internal.example.com": {"127.0.0.23"}, "example.eu.auth0.com": {"127.0.0.24"}, "sso.internal.example.com": {"127.0.0.24"}}})
	e.Apply(example(t, "4.3-api-jwt.yaml", portOf(ln)))
	good := auth0.token(t, map[string]any{"sub": "user-1", "aud": "https://api.example.com", "https://example.com/org": "org-9"})
	e.WaitFor("token accepted", func() error {
		// The route may serve before the policy does: wait for both.
		if r, _ := call(t, e, "GET", "api.example.com", "/x"); r.StatusCode != 401 {
			return fmt.Errorf("no token: %d", r.StatusCode)
		}
		if r, b := call(t, e, "GET", "api.example.com", "/x", "Authorization", "Bearer "+good); r.StatusCode != 200 {
			return fmt.Errorf("%d %s", r.StatusCode, b)
		}
		return nil
	})
	r, body := call(t, e, "GET", "api.example.com", "/x", "Authorization", "Bearer "+good, "X-User-Id", "spoofed")
	ec := echoOf(t, r, body)
	if http.Header(ec.Headers).Get("X-User-Id") != "user-1" || http.Header(ec.Headers).Get("X-Org-Id") != "org-9" || http.Header(ec.Headers).Get("Authorization") != "" {
		t.Errorf("upstream headers: %v", ec.Headers)
	}
	// Keycloak's tokens come in a cookie; its JWKS through the keycloak Backend.
	kt := kc.token(t, map[string]any{"preferred_username": "bob", "aud": "api", "realm_access": map[string]any{"roles": []string{"a", "b"}}})
	r, body = call(t, e, "GET", "api.example.com", "/x", "Cookie", "theme=dark; kc_access="+kt)
	if r.StatusCode != 200 {
		t.Fatalf("keycloak cookie token: %d %s", r.StatusCode, body)
	}
	ec = echoOf(t, r, body)
	if http.Header(ec.Headers).Get("X-User-Id") != "bob" || http.Header(ec.Headers).Get("X-Roles") != "a,b" || http.Header(ec.Headers).Get("Cookie") != "theme=dark" {
		t.Errorf("keycloak upstream headers: %v", ec.Headers)
	}
	for name, c := range map[string]struct {
		hdr  []string
		want string
	}{
		"missing":        {[]string{"X-User-Id", "spoofed"}, "Bearer"},
		"garbage":        {[]string{"Authorization", "Bearer not.a.token"}, `error="invalid_token"`},
		"wrong audience": {[]string{"Authorization", "Bearer " + auth0.token(t, map[string]any{"sub": "u", "aud": "other"})}, `error="invalid_token"`},
		"expired":        {[]string{"Authorization", "Bearer " + auth0.token(t, map[string]any{"sub": "u", "aud": "https://api.example.com", "exp": time.Now().Add(-5 * time.Minute).Unix()})}, `error="invalid_token"`},
		"unknown issuer": {[]string{"Authorization", "Bearer " + newIssuer(t, "https://evil.example/", "a1").token(t, map[string]any{"aud": "https://api.example.com"})}, `error="invalid_token"`},
	} {
		r, _ := call(t, e, "GET", "api.example.com", "/x", c.hdr...)
		if r.StatusCode != 401 || !strings.Contains(r.Header.Get("Www-Authenticate"), c.want) {
			t.Errorf("%s: %d %q", name, r.StatusCode, r.Header.Get("Www-Authenticate"))
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("auth0 JWKS fetched %d times, want 1 (cached)", n)
	}
	e.WaitFor("Healthy", func() error {
		if st, reason, msg := kindCondition(e, "AuthPolicy", "api-jwt", "Healthy"); st != "True" {
			return fmt.Errorf("Healthy %s %s %q", st, reason, msg)
		}
		return nil
	})

	// Case 66: a JWKS endpoint down from the start: 401 and Healthy=False/JWKSFetchFailed.
	e.Apply(`apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: orphan}
spec:
  parentRefs: [{name: default}]
  hostnames: [orphan.example.com]
  rules: [{backendRefs: [{group: core.apoxy.dev, kind: Backend, name: api, port: ` + portOf(ln) + `}]}]
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: AuthPolicy
metadata: {name: orphan-jwt}
spec:
  targetRefs: [{group: gateway.apoxy.dev, kind: HTTPRoute, name: orphan}]
  jwt:
    providers:
    - name: gone
      issuer: https://example.eu.auth0.com/
      jwks: {remote: {uri: "https://gone.example.com/jwks.json", timeout: 1s}}
`)
	e.WaitFor("JWKSFetchFailed", func() error {
		r, _ := call(t, e, "GET", "orphan.example.com", "/", "Authorization", "Bearer "+good)
		if r.StatusCode != 401 {
			return fmt.Errorf("orphan: %d", r.StatusCode)
		}
		if st, reason, msg := kindCondition(e, "AuthPolicy", "orphan-jwt", "Healthy"); st != "False" || reason != "JWKSFetchFailed" {
			return fmt.Errorf("Healthy %s %s %q", st, reason, msg)
		}
		return nil
	})
}

// Design §4.12 with §4.3, and §5 cases 31-32: claim-keyed Global rules count per verified
// `sub` within each plan (a free user and a pro user each have their own bucket, with their
// tier's limit), and the pre-auth ip-guard runs before JWT verification, so a flood of bad
// tokens is cut off with 429 before it costs a signature check.
func TestAuthPolicyJWTTiers(t *testing.T) {
	addr := edgetest.StartRedis(t)
	ln := echoServer(t, "127.0.0.31:0", "api", nil)
	ca := newCA(t)
	auth0 := newIssuer(t, "https://example.eu.auth0.com/", "a1")
	cert := ca.issue(t, "example.eu.auth0.com", "sso.internal.example.com")
	serve(t, "127.0.0.32:443", &cert, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(auth0.jwks()) }))
	e := edgetest.Start(t, edgetest.Options{RootCAs: ca.pool, RateLimitStore: ratelimit.NewRedis(ratelimit.RedisOptions{Address: addr}), Hosts: map[string][]string{
		"api.internal.example.com": {"127.0.0.31"}, "example.eu.auth0.com": {"127.0.0.32"}, "sso.internal.example.com": {"127.0.0.32"}}})
	e.Apply(example(t, "4.3-api-jwt.yaml", portOf(ln)) + "\n---\n" + example(t, "4.12-jwt-tiers.yaml", portOf(ln)))
	tok := func(sub, plan string) string {
		return auth0.token(t, map[string]any{"sub": sub, "plan": plan, "aud": "https://api.example.com"})
	}
	free, pro := tok("f1", "free"), tok("p1", "pro")
	get := func(token string) int {
		r, _ := call(t, e, "GET", "api.example.com", "/", "Authorization", "Bearer "+token)
		return r.StatusCode
	}
	e.WaitFor("tiers in force", func() error {
		if c := get(free); c != 200 {
			return fmt.Errorf("free: %d", c)
		}
		if n := redisCounts(t, addr, "free-daily"); len(n) != 1 {
			return fmt.Errorf("free-daily keys %v", n)
		}
		return nil
	})
	before := redisCounts(t, addr, "free-daily")
	for _, tk := range []string{free, free, pro, tok("f2", "free"), tok("f2", "free")} {
		if c := get(tk); c != 200 {
			t.Fatalf("request: %d", c)
		}
	}
	// Each verified sub has its own bucket within its tier, in the real store.
	freeCounts, proCounts := redisCounts(t, addr, "free-daily"), redisCounts(t, addr, "pro-daily")
	if len(freeCounts) != 2 || len(proCounts) != 1 || proCounts[0] != 1 {
		t.Fatalf("buckets: free %v (before %v), pro %v", freeCounts, before, proCounts)
	}
	if !(freeCounts[0] == 2 && freeCounts[1] == before[0]+2 || freeCounts[1] == 2 && freeCounts[0] == before[0]+2) {
		t.Errorf("free buckets %v (f1 had %v): want f1 +2, f2 = 2", freeCounts, before)
	}
	// ip-guard: 100 per second per client IP, before authentication. Ten clients send 300
	// bad tokens at once, well over 100 in a second even on a slow machine.
	var limited, unauth atomic.Int64
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			for range 30 {
				r, _ := call(t, e, "GET", "api.example.com", "/", "Authorization", "Bearer not.a.token")
				switch r.StatusCode {
				case 429:
					limited.Add(1)
				case 401:
					unauth.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if limited.Load() == 0 || unauth.Load() == 0 || limited.Load()+unauth.Load() != 300 {
		t.Errorf("bad-token flood: %d limited, %d refused by JWT", limited.Load(), unauth.Load())
	}
}

// redisCounts returns the counts of a rate-limit rule's keys in a Redis (in key order).
func redisCounts(t *testing.T, addr, rule string) []int {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command("redis-cli", "-h", host, "-p", port, "--scan", "--pattern", "*"+rule+"*").Output()
	if err != nil {
		t.Fatalf("redis-cli: %v", err)
	}
	keys := strings.Fields(string(out))
	sort.Strings(keys)
	var counts []int
	for _, k := range keys {
		v, err := exec.Command("redis-cli", "-h", host, "-p", port, "GET", k).Output()
		if err != nil {
			t.Fatalf("redis-cli GET: %v", err)
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(v)))
		counts = append(counts, n)
	}
	return counts
}

// Bad input (issue 14, §5 case 72): an oversized token is refused (401, malformed) without
// being decoded, a header past the server's limit gets 431, and a JWKS endpoint that hangs
// never holds a request beyond its timeout.
func TestAuthPolicyJWTBadInput(t *testing.T) {
	ln := echoServer(t, "127.0.0.33:0", "api", nil)
	ca := newCA(t)
	cert := ca.issue(t, "hang.example.com")
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	serve(t, "127.0.0.34:443", &cert, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	e := edgetest.Start(t, edgetest.Options{RootCAs: ca.pool, Hosts: map[string][]string{"api.internal.example.com": {"127.0.0.33"}, "hang.example.com": {"127.0.0.34"}}})
	e.Apply(`apiVersion: core.apoxy.dev/v1alpha2
kind: Backend
metadata: {name: api}
spec: {endpoints: [{fqdn: api.internal.example.com}]}
---
apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata: {name: api}
spec:
  parentRefs: [{name: default}]
  hostnames: [api.example.com]
  rules: [{backendRefs: [{group: core.apoxy.dev, kind: Backend, name: api, port: ` + portOf(ln) + `}]}]
---
apiVersion: policy.apoxy.dev/v1alpha1
kind: AuthPolicy
metadata: {name: hang}
spec:
  targetRefs: [{group: gateway.apoxy.dev, kind: HTTPRoute, name: api}]
  jwt:
    providers:
    - name: hang
      issuer: https://hang.example.com/
      jwks: {remote: {uri: "https://hang.example.com/jwks", timeout: 1s}}
`)
	e.WaitFor("policy in force", func() error {
		if r, _ := call(t, e, "GET", "api.example.com", "/"); r.StatusCode != 401 {
			return fmt.Errorf("%d", r.StatusCode)
		}
		return nil
	})
	tok := newIssuer(t, "https://hang.example.com/", "k").token(t, nil)
	start := time.Now()
	r, _ := call(t, e, "GET", "api.example.com", "/", "Authorization", "Bearer "+tok)
	if took := time.Since(start); r.StatusCode != 401 || took > 3*time.Second {
		t.Errorf("hanging JWKS: %d after %v, want 401 within the 1s timeout", r.StatusCode, took)
	}
	big := "Bearer " + strings.Repeat("a", 20<<10) + "." + strings.Repeat("b", 10) + ".c"
	if r, _ := call(t, e, "GET", "api.example.com", "/", "Authorization", big); r.StatusCode != 401 || !strings.Contains(r.Header.Get("Www-Authenticate"), "invalid_token") {
		t.Errorf("20 KiB token: %d %q", r.StatusCode, r.Header.Get("Www-Authenticate"))
	}
	// Past the server's 60 KiB header limit, small enough that the client finishes writing
	// before the server answers and closes (a larger one races into a broken pipe).
	if r, _ := call(t, e, "GET", "api.example.com", "/", "Authorization", "Bearer "+strings.Repeat("x", 100<<10)); r.StatusCode != 431 {
		t.Errorf("100 KiB header: %d, want 431", r.StatusCode)
	}
}

// Design §4.11's AuthPolicies and §5 cases 3, 11, 12: JWT on the https listener only (the
// same route on http needs none), /healthz exempt by `jwt: {disabled: true}` on its rule;
// with the listener policy turned into an Override, /healthz needs a JWT again on https and the
// opt-out is reported superseded there (PartiallyProgrammed rather than the design's
// Overridden: the route is also served on the http listener, where the opt-out still counts).
func TestAuthPolicyGatewayListenerAndOptOut(t *testing.T) {
	ln := echoServer(t, "127.0.0.35:0", "app", nil)
	e := edgetest.Start(t, edgetest.Options{Hosts: map[string][]string{"app.internal.example.com": {"127.0.0.35"}}})
	doc := example(t, "4.11-gateway-defaults.yaml", portOf(ln))
	e.Apply(doc)
	tlsc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	get := func(c *http.Client, base, path string) int {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Host = "app.example.com"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s%s: %v", base, path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	https, plain := "https://"+e.TLSAddr, "http://"+e.HTTPAddr
	e.WaitFor("edge-auth on https, healthz-public on /healthz", func() error {
		if c := get(tlsc, https, "/"); c != 401 {
			return fmt.Errorf("https /: %d", c)
		}
		if st, _, _ := kindCondition(e, "AuthPolicy", "healthz-public", "Accepted"); st != "True" {
			return fmt.Errorf("healthz-public not accepted yet")
		}
		if c := get(tlsc, https, "/healthz"); c != 200 {
			return fmt.Errorf("https /healthz (jwt disabled on the rule): %d", c)
		}
		return nil
	})
	if c := get(http.DefaultClient, plain, "/"); c != 200 {
		t.Errorf("http / (edge-auth targets the https listener): %d", c)
	}
	e.Apply(strings.Replace(doc, "  targetRefs: [{group: gateway.apoxy.dev, kind: Gateway, name: default, sectionName: https}]\n  jwt:",
		"  targetRefs: [{group: gateway.apoxy.dev, kind: Gateway, name: default, sectionName: https}]\n  strategy: Override\n  jwt:", 1))
	e.WaitFor("Override beats the opt-out", func() error {
		if c := get(tlsc, https, "/healthz"); c != 401 {
			return fmt.Errorf("https /healthz: %d", c)
		}
		if st, reason, msg := kindCondition(e, "AuthPolicy", "healthz-public", "Programmed"); st != "True" || reason != "PartiallyProgrammed" ||
			!strings.Contains(msg, "jwt superseded by AuthPolicy default/edge-auth (Gateway default/default listener https, Override)") {
			return fmt.Errorf("healthz-public Programmed %s %s %q", st, reason, msg)
		}
		return nil
	})
}
