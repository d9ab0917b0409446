package filter

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"apoxy.dev/apoxy/internal/ir"
)

func basicRoute(t *testing.T, users string, forward bool) *ir.Route {
	t.Helper()
	rt := prefixRoute("/")
	rt.Auth = &ir.Auth{Basic: &ir.BasicAuth{AuthBlock: ir.AuthBlock{Policy: "default/admin"}, Realm: `Ad"min`, Users: ir.SecretString(users),
		ForwardUsernameHeader: "x-auth-user", ForwardCredentials: forward}}
	return rt
}

func bcryptLine(t *testing.T, user, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return user + ":" + string(h) + "\n"
}

// Design §5 cases 87 and 88: a wrong password gets 401 with the realm; a good one passes with
// the user name forwarded (a client-sent one stripped) and, by default, without the
// Authorization header; a user id may not contain ":", but the password may, and non-ASCII
// is fine.
func TestBasicAuth(t *testing.T) {
	users := bcryptLine(t, "alice", "s3cret:with:colons") + bcryptLine(t, "zoë", "pässwörd")
	rt := basicRoute(t, users, false)
	cases := []struct {
		name       string
		user, pass string
		set        bool
		want       int
		wantUser   string
	}{
		{"no credentials", "", "", false, 401, ""},
		{"wrong password", "alice", "nope", true, 401, ""},
		{"unknown user", "mallory", "s3cret:with:colons", true, 401, ""},
		{"good", "alice", "s3cret:with:colons", true, 200, "alice"},
		{"non-ascii", "zoë", "pässwörd", true, 200, "zoë"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-Auth-User", "spoofed")
		if c.set {
			r.SetBasicAuth(c.user, c.pass)
		}
		x, rec, _ := run(t, rt, r, nil)
		if rec.Code != c.want {
			t.Errorf("%s: %d, want %d", c.name, rec.Code, c.want)
		}
		if got := x.Req.Header.Get("X-Auth-User"); got != c.wantUser {
			t.Errorf("%s: x-auth-user %q upstream, want %q", c.name, got, c.wantUser)
		}
		if c.want == 401 && rec.Header().Get("Www-Authenticate") != `Basic realm="Ad\"min", charset="UTF-8"` {
			t.Errorf("%s: challenge %q", c.name, rec.Header().Get("Www-Authenticate"))
		}
		if c.want == 200 && (x.Req.Header.Get("Authorization") != "" || !x.Identity.Authenticated || x.Identity.User != c.user || x.Auth != "basic") {
			t.Errorf("%s: upstream Authorization %q, identity %+v, log %q", c.name, x.Req.Header.Get("Authorization"), x.Identity, x.Auth)
		}
	}
	// forwardCredentials keeps the header.
	r := httptest.NewRequest("GET", "/", nil)
	r.SetBasicAuth("alice", "s3cret:with:colons")
	if x, rec, _ := run(t, basicRoute(t, users, true), r, nil); rec.Code != 200 || x.Req.Header.Get("Authorization") == "" {
		t.Errorf("forwardCredentials: %d %q", rec.Code, x.Req.Header.Get("Authorization"))
	}
}

// A block without usable users fails closed with 500, never open.
func TestBasicAuthUnavailableFailsClosed(t *testing.T) {
	rt := basicRoute(t, "", false)
	rt.Auth.Basic.Unavailable = "Secret default/admin-users not found"
	r := httptest.NewRequest("GET", "/", nil)
	r.SetBasicAuth("alice", "x")
	if _, rec, answered := run(t, rt, r, nil); !answered || rec.Code != http.StatusInternalServerError {
		t.Errorf("unavailable: %v %d", answered, rec.Code)
	}
}

// The verifier (and its cache) is kept across compiles while the file is the same, and a
// changed file gets a new one; what the new configuration no longer uses is dropped.
func TestBasicAuthVerifierKeptAcrossSwaps(t *testing.T) {
	env := &Env{Kept: &Kept{}}
	users := bcryptLine(t, "alice", "pw")
	compile := func(users string) *basicAuth {
		s, err := newBasicAuth(basicRoute(t, users, false), env)
		if err != nil {
			t.Fatal(err)
		}
		return s.(*basicAuth)
	}
	env.Kept.Begin()
	a := compile(users)
	env.Kept.End(true)
	env.Kept.Begin()
	b := compile(users)
	env.Kept.End(true)
	if a.v != b.v {
		t.Error("same htpasswd file got a new verifier")
	}
	env.Kept.Begin()
	c := compile(users + bcryptLine(t, "bob", "pw"))
	env.Kept.End(true)
	if c.v == a.v || len(env.Kept.cur) != 1 {
		t.Errorf("changed file: same verifier %v, kept %d objects", c.v == a.v, len(env.Kept.cur))
	}
}

func BenchmarkBasicAuthCached(b *testing.B) {
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), 10)
	rt := prefixRoute("/")
	rt.Auth = &ir.Auth{Basic: &ir.BasicAuth{Realm: "r", Users: ir.SecretString("alice:" + string(h) + "\n")}}
	c, err := Compile(rt, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("GET", "/", nil)
		r.SetBasicAuth("alice", "pw")
		x, _ := exchange(r, rt)
		if c.Run(x) {
			b.Fatal("refused")
		}
	}
}
