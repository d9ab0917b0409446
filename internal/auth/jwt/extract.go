package jwt

import (
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
)

// HeaderSource is a request header that may carry the token, after Prefix (e.g. "Bearer ",
// matched case-insensitively; empty means the whole value is the token).
type HeaderSource struct {
	Name   string
	Prefix string
}

// Extractor says where a request's token may be: headers, then cookies, then query parameters,
// each in order; the first place holding a non-empty value is used. The zero Extractor is
// DefaultExtractor.
type Extractor struct {
	Headers []HeaderSource
	Cookies []string
	Query   []string
}

// DefaultExtractor reads "Authorization: Bearer <token>".
func DefaultExtractor() Extractor {
	return Extractor{Headers: slices.Clone(defaultExtractor.Headers)}
}

// defaultExtractor is what the zero Extractor uses (shared, never modified).
var defaultExtractor = Extractor{Headers: []HeaderSource{{Name: "Authorization", Prefix: "Bearer "}}}

// LocationKind is the kind of place a token was found in.
type LocationKind uint8

// The places a token can be found in.
const (
	LocationNone LocationKind = iota
	LocationHeader
	LocationCookie
	LocationQuery
)

// Location is where Extract found a token, for Remove (and logs).
type Location struct {
	Kind LocationKind
	Name string // the header, cookie or query parameter name
	// value is the header value that held the token, so Remove takes out that one only.
	value string
}

// String names the location, e.g. "header Authorization".
func (l Location) String() string {
	switch l.Kind {
	case LocationHeader:
		return "header " + l.Name
	case LocationCookie:
		return "cookie " + l.Name
	case LocationQuery:
		return "query parameter " + l.Name
	}
	return "none"
}

// Extract returns the request's token and where it was: ok is false when no configured place
// holds one.
func (e *Extractor) Extract(r *http.Request) (token string, where Location, ok bool) {
	x := e
	if len(e.Headers) == 0 && len(e.Cookies) == 0 && len(e.Query) == 0 {
		x = &defaultExtractor
	}
	for _, h := range x.Headers {
		for _, v := range r.Header.Values(h.Name) {
			if t, ok := cutPrefixFold(v, h.Prefix); ok {
				return t, Location{Kind: LocationHeader, Name: h.Name, value: v}, true
			}
		}
	}
	for _, name := range x.Cookies {
		for _, c := range r.CookiesNamed(name) {
			if c.Value != "" {
				return c.Value, Location{Kind: LocationCookie, Name: name}, true
			}
		}
	}
	for _, name := range x.Query {
		if t, ok := queryValue(r.URL.RawQuery, name); ok {
			return t, Location{Kind: LocationQuery, Name: name}, true
		}
	}
	return "", Location{}, false
}

// cutPrefixFold returns v's token after prefix (case-insensitive), trimmed of spaces; ok is
// false when v does not start with prefix or nothing follows it.
func cutPrefixFold(v, prefix string) (string, bool) {
	if len(v) < len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return "", false
	}
	t := strings.Trim(v[len(prefix):], " \t")
	return t, t != ""
}

// queryValue returns the first non-empty value of the parameter name in a raw query.
func queryValue(raw, name string) (string, bool) {
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(part, "=")
		if key, err := url.QueryUnescape(k); err != nil || key != name {
			continue
		}
		if val, err := url.QueryUnescape(v); err == nil && val != "" {
			return val, true
		}
	}
	return "", false
}

// Remove takes the token out of the place Extract found it in, and only there (forwardToken:
// false): the header value that held it (other values of the header stay), the cookies of that
// name from the Cookie header (the other cookies stay), or the query parameters of that name
// from r.URL.RawQuery (the rest of the raw query is kept byte for byte).
func (e *Extractor) Remove(r *http.Request, where Location) {
	switch where.Kind {
	case LocationHeader:
		key := textproto.CanonicalMIMEHeaderKey(where.Name)
		vals := r.Header[key]
		for i, v := range vals {
			if v == where.value {
				vals = append(vals[:i:i], vals[i+1:]...)
				break
			}
		}
		if len(vals) == 0 {
			delete(r.Header, key)
		} else {
			r.Header[key] = vals
		}
	case LocationCookie:
		var kept []string
		for _, line := range r.Header["Cookie"] {
			if l := dropCookie(line, where.Name); l != "" {
				kept = append(kept, l)
			}
		}
		if len(kept) == 0 {
			r.Header.Del("Cookie")
		} else {
			r.Header["Cookie"] = kept
		}
	case LocationQuery:
		r.URL.RawQuery = dropQueryParam(r.URL.RawQuery, where.Name)
	}
}

// dropCookie removes the cookies named name from a Cookie header line.
func dropCookie(line, name string) string {
	var kept []string
	for part := range strings.SplitSeq(line, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		n, _, _ := strings.Cut(part, "=")
		if strings.TrimSpace(n) != name {
			kept = append(kept, part)
		}
	}
	return strings.Join(kept, "; ")
}

// dropQueryParam removes the parameters named name from a raw query, keeping the other parts
// as they were.
func dropQueryParam(raw, name string) string {
	var kept []string
	for part := range strings.SplitSeq(raw, "&") {
		k, _, _ := strings.Cut(part, "=")
		if key, err := url.QueryUnescape(k); err == nil && key == name {
			continue
		}
		kept = append(kept, part)
	}
	return strings.Join(kept, "&")
}
