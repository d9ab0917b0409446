package console

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	yamlv3 "go.yaml.in/yaml/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	gatewayv1 "apoxy.dev/apoxy/api/gateway/v1"
	"apoxy.dev/apoxy/internal/resource"
)

func newTestConsole(t *testing.T, dev bool) *Console {
	t.Helper()
	opts := Options{API: func() (string, []byte) { return "https://127.0.0.1:1", nil }}
	if dev {
		opts.DevSignIn = func() string { return "apoxy_admin_test" }
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// signedIn returns a session cookie for a session of project "default".
func signedIn(t *testing.T, c *Console) (*http.Cookie, *session) {
	t.Helper()
	rec := httptest.NewRecorder()
	c.startSession(rec, httptest.NewRequest(http.MethodGet, "/console/", nil), "apoxy_p_default_1_x", false, "default")
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode || cookies[0].Path != Prefix {
		t.Fatalf("session cookie %+v: want one HttpOnly SameSite=Strict cookie on %s", cookies, Prefix)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return cookies[0], c.sessions[cookies[0].Value]
}

// TestSecurityHeadersAndSignIn: every answer carries the strict CSP; a page without a session
// goes to the sign-in form; data endpoints answer 401; the dev link signs in only with its
// code, and only when dev sign-in is on.
func TestSecurityHeadersAndSignIn(t *testing.T) {
	c := newTestConsole(t, true)
	get := func(path string, cookies ...*http.Cookie) *http.Response {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		for _, ck := range cookies {
			req.AddCookie(ck)
		}
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, req)
		return rec.Result()
	}
	resp := get("/console/p/default/")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/signin?next=") {
		t.Errorf("unsigned page: %d %s, want a redirect to sign-in", resp.StatusCode, resp.Header.Get("Location"))
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q allows unsafe sources", csp)
	}
	if resp := get("/console/p/default/data/top"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned data request: %d, want 401", resp.StatusCode)
	}
	if resp := get("/console/signin?code=wrong"); resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Errorf("wrong dev code: %d with cookies %v, want 401 and no session", resp.StatusCode, resp.Cookies())
	}
	resp = get(c.SignInPath())
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("dev link: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	if s := c.session(withCookie(resp.Cookies()[0])); s == nil || !s.admin || s.token != "apoxy_admin_test" {
		t.Errorf("dev link session %+v, want the admin key", s)
	}
	if resp := get("/console/static/console.js"); resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "javascript") {
		t.Errorf("static script: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	// Without dev sign-in (apoxy server), no code works, not even an empty one.
	server := newTestConsole(t, false)
	if server.SignInPath() != "" {
		t.Errorf("server console has a sign-in link %q", server.SignInPath())
	}
	rec := httptest.NewRecorder()
	server.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/console/signin?code=", nil))
	if rec.Code != http.StatusUnauthorized || len(rec.Result().Cookies()) != 0 {
		t.Errorf("empty code on a server console: %d", rec.Code)
	}
}

func withCookie(ck *http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/console/", nil)
	r.AddCookie(ck)
	return r
}

// TestCSRF: a state-changing request needs the session's token and a same-origin Origin; a
// project key's session cannot open another project's pages.
func TestCSRF(t *testing.T) {
	c := newTestConsole(t, false)
	ck, s := signedIn(t, c)
	post := func(path string, form url.Values, origin string) int {
		req := httptest.NewRequest(http.MethodPost, "http://console.test"+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		req.AddCookie(ck)
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, req)
		return rec.Code
	}
	del := url.Values{"action": {"delete"}}
	if code := post("/console/p/default/k/httproutes/default/x", del, "http://console.test"); code != http.StatusForbidden {
		t.Errorf("POST without a CSRF token: %d, want 403", code)
	}
	del.Set("csrf", s.csrf)
	if code := post("/console/p/default/k/httproutes/default/x", del, "http://evil.test"); code != http.StatusForbidden {
		t.Errorf("cross-origin POST with the token: %d, want 403", code)
	}
	if code := post("/console/p/default/k/httproutes/default/x", del, "null"); code != http.StatusForbidden {
		t.Errorf("POST from an opaque origin: %d, want 403", code)
	}
	if code := post("/console/signout", url.Values{"csrf": {s.csrf}}, "http://console.test"); code != http.StatusSeeOther {
		t.Errorf("same-origin sign-out with the token: %d, want 303", code)
	}
	if c.session(withCookie(ck)) != nil {
		t.Error("the session survived signing out")
	}

	ck, _ = signedIn(t, c)
	req := httptest.NewRequest(http.MethodGet, "/console/p/other/", nil)
	req.AddCookie(ck)
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "Your key is for project") {
		t.Errorf("project key on another project: %d", rec.Code)
	}
}

const routeYAML = `apiVersion: gateway.apoxy.dev/v1
kind: HTTPRoute
metadata:
  name: r
spec:
  hostnamez:
  - a.example.com
  rules:
  - matches:
    - path:
        type: PathPrefix
        value: login
`

func TestLineOf(t *testing.T) {
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal([]byte(routeYAML), &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	for path, want := range map[string]int{
		"spec.hostnamez":                       6,
		"spec.hostnamez[0]":                    7,
		"spec.rules[0].matches[0].path.value":  12,
		"spec.rules[0].matches[0].path":        10,
		"spec.rules[0].matches[0].path.nosuch": 10, // the deepest part that exists
		"spec.rules[3]":                        8,
		"metadata.name":                        4,
		"":                                     0,
	} {
		if got := lineOf(root, path); got != want {
			t.Errorf("lineOf(%q) = %d, want %d", path, got, want)
		}
	}
}

// TestFieldErrors: the server's causes and strict-decoding refusals land at their lines, with
// the nearest field suggested for an unknown one.
func TestFieldErrors(t *testing.T) {
	k, _ := resource.Lookup(gatewayv1.SchemeGroupVersion.WithKind("HTTPRoute"))
	invalid := apierrors.NewInvalid(schema.GroupKind{Group: "gateway.apoxy.dev", Kind: "HTTPRoute"}, "r", field.ErrorList{
		field.Invalid(field.NewPath("spec", "rules").Index(0).Child("matches").Index(0).Child("path", "value"), "login", "must be an absolute path"),
	})
	errs := fieldErrors(routeYAML, k, invalid)
	if len(errs) != 1 || errs[0].Line != 12 || !strings.Contains(errs[0].Message, "absolute path") {
		t.Errorf("invalid: %+v", errs)
	}
	strict := apierrors.NewBadRequest(`HTTPRoute in version "v1" cannot be handled as a HTTPRoute: strict decoding error: unknown field "spec.hostnamez"`)
	errs = fieldErrors(routeYAML, k, strict)
	if len(errs) != 1 || errs[0].Line != 6 || !strings.Contains(errs[0].Message, `did you mean "spec.hostnames"?`) {
		t.Errorf("strict: %+v", errs)
	}
	other := fieldErrors(routeYAML, k, errors.New("connection refused"))
	if len(other) != 1 || other[0].Line != 0 || other[0].Message != "connection refused" {
		t.Errorf("other error: %+v", other)
	}
	lines := listing(routeYAML, append(errs, other...))
	if len(lines) != 12 || len(lines[5].Errors) != 1 || !strings.HasPrefix(lines[5].Errors[0], "spec.hostnamez: ") {
		t.Errorf("listing: %+v", lines)
	}
}

func TestParseObject(t *testing.T) {
	for _, tc := range []struct{ name, text, err string }{
		{"empty", "  \n", "the editor is empty"},
		{"two objects", routeYAML + "---\n" + routeYAML, "more than one object"},
		{"no kind", "apiVersion: v1\nmetadata: {name: x}\n", "apiVersion and kind are required"},
		{"unknown kind", "apiVersion: gateway.apoxy.dev/v1\nkind: HTTPRoot\nmetadata: {name: x}\n", "no kind HTTPRoot"},
		{"no name", "apiVersion: gateway.apoxy.dev/v1\nkind: HTTPRoute\nmetadata: {}\n", "metadata.name is required"},
		{"root kind", "apiVersion: platform.apoxy.dev/v1alpha1\nkind: Project\nmetadata: {name: x}\n", "no kind Project"},
	} {
		if _, _, err := parseObject(tc.text); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
		}
	}
	obj, k, err := parseObject(strings.Replace(routeYAML, "gateway.apoxy.dev/v1", "gateway.networking.k8s.io/v1", 1) + "status: {parents: []}\n")
	if err != nil || k.GVK.Kind != "HTTPRoute" || obj.GetAPIVersion() != "gateway.apoxy.dev/v1" || obj.GetNamespace() != "default" || obj.Object["status"] != nil {
		t.Errorf("upstream route: %v %v %v", err, obj, k)
	}
}

func TestStatusTables(t *testing.T) {
	obj := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{
		"conditions": []any{map[string]any{"type": "Ready"}},
		"endpoints":  []any{map[string]any{"healthy": false, "address": "10.0.0.1", "port": int64(80)}, map[string]any{"address": "10.0.0.2", "healthy": true}},
		"addresses":  []any{"a"},
	}}}
	tables := statusTables(obj)
	if len(tables) != 1 || tables[0].Title != "endpoints" || strings.Join(tables[0].Columns, ",") != "address,healthy,port" ||
		strings.Join(tables[0].Rows[0], ",") != "10.0.0.1,false,80" || strings.Join(tables[0].Rows[1], ",") != "10.0.0.2,true," {
		t.Errorf("tables %+v", tables)
	}
}

func TestEditableYAMLHidesSecrets(t *testing.T) {
	obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": "s", "uid": "u", "managedFields": []any{}},
		"data":     map[string]any{"tls.key": "c2VjcmV0"}}}
	y := editableYAML(obj, true)
	if strings.Contains(y, "c2VjcmV0") || strings.Contains(y, "uid") || strings.Contains(y, "managedFields") || !strings.Contains(y, "hidden: 8 characters") {
		t.Errorf("secret YAML:\n%s", y)
	}
}

func FuzzLineOf(f *testing.F) {
	f.Add(routeYAML, "spec.rules[0].matches[0].path.value")
	f.Add("a: [1, {b: c}]", "a[1].b")
	f.Add("- x\n- y", "[1]")
	f.Add("a: {b: [}", "a[x].b[")
	f.Fuzz(func(t *testing.T, text, path string) {
		var doc yamlv3.Node
		if yamlv3.Unmarshal([]byte(text), &doc) != nil || len(doc.Content) == 0 {
			_ = splitPath(path)
			return
		}
		if l := lineOf(doc.Content[0], path); l < 0 || l > strings.Count(text, "\n")+1 {
			t.Errorf("line %d outside the text", l)
		}
	})
}
