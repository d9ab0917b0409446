package oidc

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"time"
)

// StateTTL is how long a login may take, from the redirect to the identity provider to the
// callback: the state cookie lives this long.
const StateTTL = 10 * time.Minute

// stateCookieInfix follows the prefix and "_" in a state cookie's name.
const stateCookieInfix = "st_"

// stateIDLen is how many characters of the state name its cookie.
const stateIDLen = 16

// loginState is what the RP remembers of a login between the redirect and the callback, in
// a sealed cookie named after the state (so logins in several tabs do not overwrite each
// other): the CSRF state itself, the OIDC nonce, the PKCE verifier and where to go back.
type loginState struct {
	Created  time.Time
	State    string // the "state" parameter: 32 random bytes, base64url
	Nonce    string // the "nonce" parameter, checked in the ID token
	Verifier string // the PKCE code_verifier (RFC 7636), 32 random bytes, base64url
	// Host is the host the login started on, Return the path and query to go back to there
	// (checked by safeReturnPath).
	Host   string
	Return string
}

const stateVersion = 1

func newLoginState(now time.Time, host, ret string) *loginState {
	return &loginState{
		Created:  now,
		State:    randomString(),
		Nonce:    randomString(),
		Verifier: randomString(),
		Host:     host,
		Return:   ret,
	}
}

// randomString returns 32 random bytes as unpadded base64url (43 characters).
func randomString() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// challenge is the PKCE S256 code_challenge of the verifier.
func (s *loginState) challenge() string {
	sum := sha256.Sum256([]byte(s.Verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// stateCookieName is the cookie that holds the login state of state; "" when state cannot
// be one of ours.
func (j *cookieJar) stateCookieName(state string) string {
	if len(state) != 43 || !isBase64URL(state) {
		return ""
	}
	return j.prefix + "_" + stateCookieInfix + state[:stateIDLen]
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (j *cookieJar) stateAAD(name string) []byte { return []byte("state\x00" + name) }

// encodeState seals s for its cookie.
func (j *cookieJar) encodeState(s *loginState) (name, value string) {
	name = j.stateCookieName(s.State)
	b := []byte{stateVersion}
	b = binary.AppendUvarint(b, uint64(max(s.Created.Unix(), 0)))
	for _, f := range [...]string{s.State, s.Nonce, s.Verifier, s.Host, s.Return} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return name, base64.RawURLEncoding.EncodeToString(j.sealer.seal(b, j.stateAAD(name)))
}

// decodeState opens the state cookie value found under name and checks that it is the
// login of state (in constant time) and not older than StateTTL.
func (j *cookieJar) decodeState(name, value, state string, now time.Time) (*loginState, bool) {
	if len(value) > ChunkSize {
		return nil, false
	}
	sealed, err := base64.RawURLEncoding.Strict().DecodeString(value)
	if err != nil {
		return nil, false
	}
	b, _, ok := j.sealer.open(sealed, j.stateAAD(name))
	if !ok || len(b) == 0 || b[0] != stateVersion {
		return nil, false
	}
	b = b[1:]
	created, n := binary.Uvarint(b)
	if n <= 0 || created > maxUnix {
		return nil, false
	}
	b = b[n:]
	var f [5]string
	for i := range f {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return nil, false
		}
		f[i], b = string(b[n:n+int(l)]), b[n+int(l):]
	}
	if len(b) != 0 {
		return nil, false
	}
	s := &loginState{Created: time.Unix(int64(created), 0), State: f[0], Nonce: f[1], Verifier: f[2], Host: f[3], Return: f[4]}
	if subtle.ConstantTimeCompare([]byte(s.State), []byte(state)) != 1 {
		return nil, false
	}
	if age := now.Sub(s.Created); age > StateTTL || age < -time.Minute {
		return nil, false
	}
	return s, true
}

// safeReturnPath returns target when it is a path on this host a browser cannot read as
// another origin, and "/" otherwise. Accepted: an absolute path ("/x?y") whose second
// character is neither "/" nor "\" (both would make a scheme-relative URL: "//evil.com",
// "/\evil.com"), without control characters, spaces or backslashes (browsers drop tabs and
// newlines from a URL and read "\" as "/"), and without a fragment. Everything else (an
// absolute URL, "javascript:", a relative path, "") is refused.
func safeReturnPath(target string) string {
	if len(target) == 0 || target[0] != '/' || len(target) > 4096 {
		return "/"
	}
	if len(target) > 1 && (target[1] == '/' || target[1] == '\\') {
		return "/"
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c == 0x7f || c == '\\' || c == '#' || c >= 0x80 {
			return "/"
		}
	}
	return target
}

// sameHost reports whether two Host values name the same host and port: case-insensitive,
// a default port (":443", ":80") the same as none.
func sameHost(a, b string) bool {
	trim := func(h string) string {
		for _, p := range [...]string{":443", ":80"} {
			if strings.HasSuffix(h, p) {
				return h[:len(h)-len(p)]
			}
		}
		return h
	}
	return strings.EqualFold(trim(a), trim(b))
}
