package filter

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"apoxy.dev/apoxy/internal/auth/htpasswd"
	"apoxy.dev/apoxy/internal/ir"
)

// basicAuth checks HTTP Basic credentials (RFC 7617) against an AuthPolicy's htpasswd file.
// The header that carries the user name upstream is stripped from the client's request
// first, whatever the outcome; the client's Authorization header is removed before the
// upstream unless the policy forwards credentials. Successful verifications are cached for
// 60 s (htpasswd.Verifier), in a verifier kept across configuration swaps while the file is
// unchanged.
type basicAuth struct {
	b         *ir.BasicAuth
	v         *htpasswd.Verifier
	challenge []string
	forward   string // canonical name of the user-name header, "" for none
	// ok, denied and unavailable count decisions.
	ok, denied, unavailable prometheus.Counter
}

// basicAuthCacheTTL is how long a successful verification is remembered.
const basicAuthCacheTTL = time.Minute

func newBasicAuth(r *ir.Route, env *Env) (Stage, error) {
	if r.Auth == nil || r.Auth.Basic == nil {
		return nil, nil
	}
	b := r.Auth.Basic
	s := &basicAuth{b: b, ok: env.authCounter("basic", b.Policy, "", "ok"), denied: env.authCounter("basic", b.Policy, "", "denied"),
		unavailable: env.authCounter("basic", b.Policy, "", "unavailable"), challenge: []string{`Basic realm="` + quoteRealm(b.Realm) + `", charset="UTF-8"`}}
	if b.ForwardUsernameHeader != "" {
		s.forward = http.CanonicalHeaderKey(b.ForwardUsernameHeader)
	}
	if b.Unavailable != "" {
		return s, nil
	}
	sum := sha256.Sum256([]byte(b.Users))
	v, err := keep(env, "htpasswd/"+hex.EncodeToString(sum[:]), func() (*htpasswd.Verifier, error) {
		f, err := htpasswd.Parse([]byte(b.Users))
		if err != nil {
			return nil, err
		}
		return htpasswd.NewVerifier(f, basicAuthCacheTTL, 0), nil
	})
	if err != nil {
		// The translator passes only files that parse; fail closed if one does not.
		b2 := *b
		b2.Unavailable = "htpasswd: " + err.Error()
		s.b = &b2
		return s, nil
	}
	s.v = v
	return s, nil
}

// quoteRealm makes a realm safe inside a quoted-string.
func quoteRealm(r string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\r", "", "\n", "").Replace(r)
}

// Contained: Serve works on the request's goroutine and keeps nothing of it.
func (*basicAuth) Contained() {}

func (s *basicAuth) Serve(x *Exchange) bool {
	h := x.Req.Header
	if s.forward != "" {
		delete(h, s.forward)
	}
	if s.b.Unavailable != "" {
		x.Auth = "basic:unavailable"
		inc(s.unavailable)
		x.Error("authentication is unavailable", http.StatusInternalServerError)
		return true
	}
	user, pass, ok := x.Req.BasicAuth()
	if !ok || !s.v.Verify(user, pass) {
		x.Auth = "basic:denied"
		inc(s.denied)
		x.W.Header()["Www-Authenticate"] = s.challenge
		x.Error("unauthorized", http.StatusUnauthorized)
		return true
	}
	x.Identity.Authenticated, x.Identity.User = true, user
	x.Auth = "basic"
	inc(s.ok)
	if !s.b.ForwardCredentials {
		delete(h, "Authorization")
	}
	if s.forward != "" {
		h[s.forward] = []string{user}
	}
	return false
}
