package oidc

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Cookie limits. A browser keeps about 4096 bytes per cookie (name, value and attributes);
// a chunk's value stays under ChunkSize so the whole Set-Cookie line fits. MaxChunks chunks
// (about 30 KiB) stay well inside the gateway's 60 KiB request-header limit together with
// the rest of a request's headers.
const (
	ChunkSize = 3800
	MaxChunks = 8
	// MaxTokenSize bounds each token the session holds.
	MaxTokenSize = 16 << 10
)

// Chunk names end in one digit: MaxChunks may not exceed 10.
var _ [10 - MaxChunks]struct{}

// SessionData is what a session cookie carries. The RP seals it after verifying the ID token
// (at login or refresh), so a cookie that opens under the KeyRing is trusted without
// verifying the token again.
type SessionData struct {
	// Start is when the user logged in; AbsoluteTimeout counts from it, refreshes or not.
	Start time.Time
	// Expiry is when the tokens expire: the access token's expiry (expires_in), else the ID
	// token's "exp". The RP refreshes shortly before it and refuses the session after it.
	Expiry time.Time
	// IDToken is the verified ID token (compact JWS); its payload gives the claims.
	IDToken string
	// AccessToken and RefreshToken are as the token endpoint returned them ("" when absent).
	AccessToken  string
	RefreshToken string
}

// sessionVersion is the first byte of a session plaintext; a new layout takes a new number.
const sessionVersion = 1

// marshal encodes d: the version, start and expiry as unix seconds (uvarint), then the three
// tokens, each as a uvarint length and its bytes.
func (d *SessionData) marshal() []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+3*binary.MaxVarintLen32+len(d.IDToken)+len(d.AccessToken)+len(d.RefreshToken))
	b = append(b, sessionVersion)
	b = binary.AppendUvarint(b, uint64(max(d.Start.Unix(), 0)))
	b = binary.AppendUvarint(b, uint64(max(d.Expiry.Unix(), 0)))
	for _, s := range [...]string{d.IDToken, d.AccessToken, d.RefreshToken} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// maxUnix bounds the times a session holds (year 9999), so they convert without overflow.
const maxUnix = 253402300799

var errBadSession = errors.New("malformed session")

// unmarshalSession decodes what marshal encodes, refusing anything else: another version,
// times out of range or a start after the expiry, a missing ID token, tokens over
// MaxTokenSize or not printable ASCII, and trailing bytes.
func unmarshalSession(b []byte) (SessionData, error) {
	var d SessionData
	if len(b) == 0 || b[0] != sessionVersion {
		return d, errBadSession
	}
	b = b[1:]
	var times [2]int64
	for i := range times {
		v, n := binary.Uvarint(b)
		if n <= 0 || v == 0 || v > maxUnix {
			return d, errBadSession
		}
		times[i], b = int64(v), b[n:]
	}
	if times[0] > times[1] {
		return d, errBadSession
	}
	d.Start, d.Expiry = time.Unix(times[0], 0), time.Unix(times[1], 0)
	var toks [3]string
	for i := range toks {
		v, n := binary.Uvarint(b)
		if n <= 0 || v > MaxTokenSize || v > uint64(len(b)-n) {
			return d, errBadSession
		}
		toks[i], b = string(b[n:n+int(v)]), b[n+int(v):]
		if !tokenChars(toks[i]) {
			return d, errBadSession
		}
	}
	if len(b) != 0 || toks[0] == "" {
		return d, errBadSession
	}
	d.IDToken, d.AccessToken, d.RefreshToken = toks[0], toks[1], toks[2]
	return d, nil
}

// tokenChars reports whether s is printable ASCII without spaces: what a token (and an
// Authorization header carrying it) can hold.
func tokenChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// cookieJar names, seals, splits and reassembles the RP's cookies. Everything it needs
// comes from the Config, so two RPs (or replicas) with the same prefix and keys read each
// other's cookies.
type cookieJar struct {
	prefix   string
	domain   string
	secure   bool
	sameSite http.SameSite
	sealer   *sealer
}

// chunkName is the name of session chunk i.
func (j *cookieJar) chunkName(i int) string { return j.prefix + "_" + strconv.Itoa(i) }

// sessionAAD binds session cookies to their prefix and purpose: a state cookie, or a session
// cookie of another prefix, never opens as this session.
func (j *cookieJar) sessionAAD() []byte { return []byte("session\x00" + j.prefix) }

var errTooLarge = errors.New("session too large for the cookies")

// encodeSession seals d and returns the values of its chunks. The first chunk starts with
// the number of chunks and a dot ("2.xxxx"), so chunks left over from a larger session are
// never reassembled into this one.
func (j *cookieJar) encodeSession(d *SessionData) ([]string, error) {
	for _, t := range [...]string{d.IDToken, d.AccessToken, d.RefreshToken} {
		if len(t) > MaxTokenSize {
			return nil, errTooLarge
		}
	}
	v := base64.RawURLEncoding.EncodeToString(j.sealer.seal(d.marshal(), j.sessionAAD()))
	n := (len(v) + 2 + ChunkSize - 1) / ChunkSize
	if n > MaxChunks {
		return nil, fmt.Errorf("%w: %d bytes need %d cookies, at most %d", errTooLarge, len(v), n, MaxChunks)
	}
	v = strconv.Itoa(n) + "." + v
	out := make([]string, 0, n)
	for len(v) > 0 {
		k := min(len(v), ChunkSize)
		out = append(out, v[:k])
		v = v[k:]
	}
	return out, nil
}

// DecodeSession reassembles, opens and decodes a session from the values of its chunks, in
// order (values[i] is the chunk named prefix_i). It refuses, with an error and never a panic:
// a missing or surplus chunk, a chunk count that does not match the first chunk's, a chunk
// over ChunkSize, bad base64, a value that no key of the ring opens (tampered, truncated,
// sealed under a foreign key or for another prefix), and a malformed plaintext. key is the
// index in the ring of the key that opened it (0: the newest). Expiry is not checked here.
func (j *cookieJar) DecodeSession(values []string) (d SessionData, key int, err error) {
	if len(values) == 0 {
		return d, 0, errNoSession
	}
	first := values[0]
	dot := strings.IndexByte(first, '.')
	if dot != 1 || first[0] < '1' || first[0] > '0'+MaxChunks {
		return d, 0, errBadSession
	}
	n := int(first[0] - '0')
	if len(values) != n {
		return d, 0, errBadSession
	}
	total := 0
	for _, v := range values {
		if len(v) == 0 || len(v) > ChunkSize {
			return d, 0, errBadSession
		}
		total += len(v)
	}
	var sb strings.Builder
	sb.Grow(total - 2)
	sb.WriteString(first[2:])
	for _, v := range values[1:] {
		sb.WriteString(v)
	}
	sealed, err := base64.RawURLEncoding.Strict().DecodeString(sb.String())
	if err != nil {
		return d, 0, errBadSession
	}
	plain, key, ok := j.sealer.open(sealed, j.sessionAAD())
	if !ok {
		return d, 0, errBadSession
	}
	d, err = unmarshalSession(plain)
	return d, key, err
}

var errNoSession = errors.New("no session cookie")

// sessionValues collects the chunk values the request carries, reading its Cookie headers
// once: for each duplicate rank (a browser may hold two cookies of one name, say a
// host-only one and one for the domain) one candidate list, the first cookie of each name
// first, at most two ranks and MaxChunks chunks.
func (j *cookieJar) sessionValues(r *http.Request) [][]string {
	var chunks [MaxChunks][2]string
	var seen [MaxChunks]int
	p := j.prefix + "_"
	for _, line := range r.Header["Cookie"] {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok || len(name) != len(p)+1 || !strings.HasPrefix(name, p) {
				continue
			}
			i := int(name[len(p)] - '0')
			if i < 0 || i >= MaxChunks || seen[i] >= 2 {
				continue
			}
			chunks[i][seen[i]] = val
			seen[i]++
		}
	}
	var cands [][]string
	for rank := 0; rank < seen[0]; rank++ {
		v := chunks[0][rank]
		n := 0
		if len(v) > 1 && v[1] == '.' && v[0] >= '1' && v[0] <= '0'+MaxChunks {
			n = int(v[0] - '0')
		}
		vals := []string{v}
		for i := 1; i < n && seen[i] > 0; i++ {
			vals = append(vals, chunks[i][min(rank, seen[i]-1)])
		}
		cands = append(cands, vals)
	}
	return cands
}

// cookie returns a cookie with the jar's attributes.
func (j *cookieJar) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		Domain:   j.domain,
		MaxAge:   maxAge,
		Secure:   j.secure,
		HttpOnly: true,
		SameSite: j.sameSite,
	}
}

// sessionCookies returns the Set-Cookie list for a session sealed into values, living
// maxAge seconds: the chunks, then a deletion for every further possible chunk name (left
// from a larger session).
func (j *cookieJar) sessionCookies(values []string, maxAge int) []*http.Cookie {
	out := make([]*http.Cookie, 0, MaxChunks)
	for i := range MaxChunks {
		if i < len(values) {
			out = append(out, j.cookie(j.chunkName(i), values[i], maxAge))
		} else {
			out = append(out, j.cookie(j.chunkName(i), "", -1))
		}
	}
	return out
}

// clearCookies returns deletions (Max-Age=0) for every possible session chunk.
func (j *cookieJar) clearCookies() []*http.Cookie { return j.sessionCookies(nil, -1) }

// isOurs reports whether a cookie name belongs to the RP: a session chunk or a login state.
func (j *cookieJar) isOurs(name string) bool {
	rest, ok := strings.CutPrefix(name, j.prefix+"_")
	if !ok {
		return false
	}
	if strings.HasPrefix(rest, stateCookieInfix) {
		return true
	}
	i, err := strconv.Atoi(rest)
	return err == nil && i >= 0 && i < MaxChunks && strconv.Itoa(i) == rest
}
