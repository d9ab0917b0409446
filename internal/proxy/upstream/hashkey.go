package upstream

import (
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"apoxy.dev/apoxy/internal/ir"
)

// hashSource reads a request's consistent-hash input (ir.HashSource), prepared once per
// cluster so that reading allocates nothing in the common case.
type hashSource struct {
	header   string // canonical header name
	query    string
	sourceIP bool
	cookie   *ir.HashCookie
}

func newHashSource(src *ir.HashSource) *hashSource {
	switch {
	case src.Header != "":
		return &hashSource{header: textproto.CanonicalMIMEHeaderKey(src.Header)}
	case src.QueryParam != "":
		return &hashSource{query: src.QueryParam}
	case src.Cookie != nil && src.Cookie.Name != "":
		return &hashSource{cookie: src.Cookie}
	case src.SourceIP:
		return &hashSource{sourceIP: true}
	}
	return nil
}

// HashKey returns r's consistent-hash key for this cluster's load balancer, and, when the
// proxy must add a Set-Cookie header to the response, its value.
//
// The key is the zero Key when the cluster does not hash (its LoadBalancer is not RingHash or
// Maglev with a hash source) or r lacks the input — no such header, query parameter or cookie,
// or an empty value: the request is then balanced by least request and is not sticky. The
// input is the header's values (all of them, in order), the query parameter's first value
// (unescaped), the cookie's value, or the client address of r.RemoteAddr; reading it allocates
// nothing unless the query value is escaped.
//
// With a cookie source and a request without the cookie, the gateway makes one: setCookie is
// "name=<16 random hex digits>; Path=...; Max-Age=...; SameSite=...; Secure; HttpOnly" (Path
// "/" when the policy names none; no Max-Age for a session cookie, TTL 0), and the key is
// that new value's, so the browser's next request, carrying it, reaches the same endpoint.
// Call HashKey once per request (not per attempt) and pass the key to PickKey for every
// attempt; add setCookie to the response whatever its status.
func (c *Cluster) HashKey(r *http.Request) (key Key, setCookie string) {
	h := c.hash
	if h == nil {
		return Key{}, ""
	}
	switch {
	case h.header != "":
		return headerKey(r.Header[h.header]), ""
	case h.query != "":
		if v, ok := queryValue(r.URL.RawQuery, h.query); ok && v != "" {
			return StringKey(v), ""
		}
		return Key{}, ""
	case h.sourceIP:
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			return IPKey(ap.Addr()), ""
		}
		if ip, err := netip.ParseAddr(r.RemoteAddr); err == nil {
			return IPKey(ip), ""
		}
		return Key{}, ""
	default:
		if v, ok := cookieValue(r.Header["Cookie"], h.cookie.Name); ok && v != "" {
			return StringKey(v), ""
		}
		v, set := newAffinityCookie(h.cookie)
		return StringKey(v), set
	}
}

// ConnKey returns the consistent-hash key of a connection (TCP and UDP relays) from client,
// when the cluster hashes on the source IP; otherwise the zero Key (a relay has no header,
// query or cookie).
func (c *Cluster) ConnKey(client netip.Addr) Key {
	if c.hash == nil || !c.hash.sourceIP {
		return Key{}
	}
	return IPKey(client)
}

// StringKey is the Key of a hash input string (xxhash64).
func StringKey(s string) Key { return Key{Hash: xxhash.Sum64String(s), Set: true} }

// IPKey is the Key of a client address: its 16-byte form, so an IPv4 client and its
// IPv4-mapped IPv6 form hash alike.
func IPKey(ip netip.Addr) Key {
	b := ip.Unmap().As16()
	return Key{Hash: xxhash.Sum64(b[:]), Set: true}
}

// headerKey hashes a header's values, each folded into the last; no values or only empty
// ones: no key.
func headerKey(values []string) Key {
	var k Key
	for _, v := range values {
		if v == "" {
			continue
		}
		h := xxhash.Sum64String(v)
		if k.Set {
			h ^= mix64(k.Hash)
		}
		k = Key{Hash: h, Set: true}
	}
	return k
}

// queryValue returns the first value of the query parameter name in a raw query, unescaped
// (url.Values.Get's answer without building the map). Only names or values with escapes
// allocate.
func queryValue(raw, name string) (string, bool) {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(k, "%+") {
			uk, err := url.QueryUnescape(k)
			if err != nil {
				continue
			}
			k = uk
		}
		if k != name {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			uv, err := url.QueryUnescape(v)
			if err != nil {
				continue
			}
			v = uv
		}
		return v, true
	}
	return "", false
}

// cookieValue returns the value of cookie name among Cookie header lines (RFC 6265 §5.4:
// "a=b; c=d"), surrounding double quotes removed, without parsing every cookie.
func cookieValue(lines []string, name string) (string, bool) {
	for _, line := range lines {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			k, v, ok := strings.Cut(part, "=")
			if !ok || k != name {
				continue
			}
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v, true
		}
	}
	return "", false
}

// newAffinityCookie makes a cookie value (64 random bits in hex: unguessable enough for an
// affinity token, which grants nothing) and its Set-Cookie header value.
func newAffinityCookie(hc *ir.HashCookie) (value, setCookie string) {
	var b [8]byte
	v := rand.Uint64()
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	value = hex.EncodeToString(b[:])
	var sb strings.Builder
	sb.Grow(len(hc.Name) + len(value) + 80)
	sb.WriteString(hc.Name)
	sb.WriteByte('=')
	sb.WriteString(value)
	path := hc.Path
	if path == "" {
		path = "/"
	}
	sb.WriteString("; Path=")
	sb.WriteString(path)
	if ttl := time.Duration(hc.TTL); ttl > 0 {
		sb.WriteString("; Max-Age=")
		sb.WriteString(strconv.FormatInt(int64((ttl+time.Second-1)/time.Second), 10))
	}
	if hc.SameSite != "" {
		sb.WriteString("; SameSite=")
		sb.WriteString(hc.SameSite)
	}
	if hc.Secure {
		sb.WriteString("; Secure")
	}
	sb.WriteString("; HttpOnly")
	return value, sb.String()
}
