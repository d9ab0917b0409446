// Package hostname holds the hostname rules of Gateway API in one place: what a pattern
// matches, which of two patterns is more specific, where a listener's and a route's hostnames
// intersect, and when two projects' patterns overlap. The translator, the route table, the
// certificate index, TLS routing and the claims registry all use it, so a request host, an SNI
// and a claim are judged by the same rule.
//
// A pattern is an exact name ("api.example.com"), a wildcard ("*.example.com", which matches
// one or more labels in front of ".example.com", never "example.com" itself), or the catch-all
// ("*" or "", any host). Names compare case-insensitively; patterns from the API are already
// lower case (Gateway API validates them), hosts from requests are lower-cased by the caller or
// by Canonical.
package hostname

import (
	"cmp"
	"slices"
	"strings"
)

// Kind classifies a pattern.
type Kind uint8

// Pattern kinds, most specific first.
const (
	Exact Kind = iota
	Wildcard
	Any
)

// KindOf classifies a pattern.
func KindOf(p string) Kind {
	switch {
	case p == "" || p == "*":
		return Any
	case strings.HasPrefix(p, "*."):
		return Wildcard
	}
	return Exact
}

// Suffix is a wildcard's suffix with its dot (".example.com" for "*.example.com"); "" for
// other patterns.
func Suffix(p string) string {
	if KindOf(p) == Wildcard {
		return p[1:]
	}
	return ""
}

// Canonical lower-cases a name or pattern and drops a trailing dot; the catch-all becomes "*".
// It allocates only when it changes something.
func Canonical(name string) string {
	if name == "" {
		return "*"
	}
	name = strings.TrimSuffix(name, ".")
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(name)
		}
	}
	return name
}

// FromHostHeader turns a Host header (or TLS server name) into the name it carries: port,
// IPv6 brackets and a trailing dot dropped, lower-cased. It allocates only when it lower-cases.
func FromHostHeader(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(h, "]"), "["), ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// Match reports whether host (a name, no port) matches pattern.
func Match(pattern, host string) bool {
	switch KindOf(pattern) {
	case Any:
		return true
	case Wildcard:
		suffix := pattern[1:]
		return len(host) > len(suffix) && hasSuffixFold(host, suffix)
	}
	return strings.EqualFold(pattern, host)
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// Compare orders patterns most specific first: exact names (longer first), then wildcards
// (longer first), then the catch-all. Equal patterns compare 0.
func Compare(a, b string) int {
	ka, kb := KindOf(a), KindOf(b)
	if ka != kb {
		return cmp.Compare(ka, kb)
	}
	if ka == Any {
		return 0
	}
	return cmp.Compare(len(b), len(a))
}

// ComparePairs orders (listener hostname, hostname) pairs most specific first: by the listener's
// pattern, then by the host's. Virtual hosts are kept in this order.
func ComparePairs(aListener, aHost, bListener, bHost string) int {
	return cmp.Or(Compare(aListener, bListener), Compare(aHost, bHost))
}

// Covers reports whether wildcard pattern w matches every name n matches (n an exact name or
// a narrower wildcard).
func Covers(w, n string) bool {
	return KindOf(w) == Wildcard && len(n) > len(w)-1 && hasSuffixFold(n, w[1:])
}

// Overlap reports whether two patterns can match the same host, the catch-all excepted: it
// overlaps only itself (a catch-all serves what no other pattern claims).
func Overlap(a, b string) bool {
	if KindOf(a) == Any || KindOf(b) == Any {
		return KindOf(a) == KindOf(b)
	}
	return strings.EqualFold(a, b) || Covers(a, b) || Covers(b, a)
}

// Intersect is Gateway API's hostname intersection of a listener's hostname and one of a
// route's: the narrower pattern when one contains the other, ok false when they share no host.
// A catch-all listener takes the route's hostname as it is.
func Intersect(listener, route string) (string, bool) {
	switch {
	case KindOf(listener) == Any:
		return route, true
	case KindOf(route) == Any:
		return listener, true
	case strings.EqualFold(listener, route):
		return route, true
	case Covers(listener, route):
		return route, true
	case Covers(route, listener):
		return listener, true
	}
	return "", false
}

// Index finds values by hostname pattern: an exact name, then the longest wildcard, then the
// catch-all. Add every pattern, then Sort, then look up (lookups allocate nothing).
type Index[V any] struct {
	exact    map[string]V
	wildcard []wildcardEntry[V]
	any      *V
}

type wildcardEntry[V any] struct {
	suffix string // ".example.com"
	value  V
}

// Add sets the value of a pattern (a later Add of the same pattern replaces it).
func (x *Index[V]) Add(pattern string, v V) {
	switch KindOf(pattern) {
	case Any:
		x.any = &v
	case Wildcard:
		suffix := pattern[1:]
		if i := slices.IndexFunc(x.wildcard, func(w wildcardEntry[V]) bool { return w.suffix == suffix }); i >= 0 {
			x.wildcard[i].value = v
			return
		}
		x.wildcard = append(x.wildcard, wildcardEntry[V]{suffix: suffix, value: v})
	default:
		if x.exact == nil {
			x.exact = map[string]V{}
		}
		x.exact[pattern] = v
	}
}

// Get returns the value added for exactly this pattern.
func (x *Index[V]) Get(pattern string) (V, bool) {
	var zero V
	switch KindOf(pattern) {
	case Any:
		if x.any != nil {
			return *x.any, true
		}
	case Wildcard:
		for _, w := range x.wildcard {
			if w.suffix == pattern[1:] {
				return w.value, true
			}
		}
	default:
		v, ok := x.exact[pattern]
		return v, ok
	}
	return zero, false
}

// Sort puts wildcards longest first; call it after the last Add.
func (x *Index[V]) Sort() {
	slices.SortStableFunc(x.wildcard, func(a, b wildcardEntry[V]) int { return cmp.Compare(len(b.suffix), len(a.suffix)) })
}

// Lookup returns the most specific value for host (lower case, no port).
func (x *Index[V]) Lookup(host string) (V, bool) {
	if v, ok := x.exact[host]; ok {
		return v, true
	}
	for _, w := range x.wildcard {
		if len(host) > len(w.suffix) && strings.HasSuffix(host, w.suffix) {
			return w.value, true
		}
	}
	if x.any != nil {
		return *x.any, true
	}
	var zero V
	return zero, false
}

// Each calls f on every value whose pattern matches host, most specific first, until f
// returns true.
func (x *Index[V]) Each(host string, f func(V) bool) {
	if v, ok := x.exact[host]; ok && f(v) {
		return
	}
	for _, w := range x.wildcard {
		if len(host) > len(w.suffix) && strings.HasSuffix(host, w.suffix) && f(w.value) {
			return
		}
	}
	if x.any != nil {
		f(*x.any)
	}
}
