// Package route compiles a listener's virtual hosts and routes (ir) into an indexed table and
// matches requests against it with Gateway API semantics, without allocating.
//
// Lookup order: the most specific listener hostname matching the request host selects the
// Gateway listener; among its virtual hosts (exact host, then wildcards longest first, then
// "*"), the first route that matches wins. Within a virtual host, exact paths are looked up in
// a map, regular expressions are tried next, then path prefixes from the longest candidate
// prefix down, each candidate list already in Gateway API precedence order.
package route

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"apoxy.dev/apoxy/internal/hostname"
	"apoxy.dev/apoxy/internal/ir"
)

// Table is a compiled route table for one listener. It is immutable and safe for concurrent
// use. T is what the caller attaches to each route (typically its handler).
type Table[T any] struct {
	groups hostname.Index[*group[T]]
}

// Entry is a compiled route.
type Entry[T any] struct {
	Route *ir.Route
	// VirtualHost is the virtual host the entry was found under.
	VirtualHost *ir.VirtualHost
	Value       T

	path    string // prefix without trailing slash, or exact path
	re      *regexp.Regexp
	headers []compiledMatch
	queries []compiledMatch
	method  string
}

type compiledMatch struct {
	name  string // canonical header key, or query name
	exact string
	re    *regexp.Regexp
}

// group is the routes of one Gateway listener hostname.
type group[T any] struct {
	vhosts hostname.Index[*vhost[T]]
}

type vhost[T any] struct {
	vh     *ir.VirtualHost
	exact  map[string][]*Entry[T]
	regex  []*Entry[T]
	prefix map[string][]*Entry[T]
	// maxPrefix is the longest prefix: longer candidates need no lookup.
	maxPrefix int
}

// Compile builds the table for a listener, calling build once per route to make its value.
func Compile[T any](l *ir.Listener, build func(*ir.Route) (T, error)) (*Table[T], error) {
	t := &Table[T]{}
	groups := map[string]*group[T]{}
	values := map[*ir.Route]T{}
	for _, irvh := range l.VirtualHosts {
		g, ok := groups[irvh.ListenerHostname]
		if !ok {
			g = &group[T]{}
			groups[irvh.ListenerHostname] = g
			t.groups.Add(irvh.ListenerHostname, g)
		}
		v := &vhost[T]{vh: irvh, exact: map[string][]*Entry[T]{}, prefix: map[string][]*Entry[T]{}}
		for _, r := range irvh.Routes {
			val, ok := values[r]
			if !ok {
				var err error
				if val, err = build(r); err != nil {
					return nil, fmt.Errorf("route %s: %w", r.Name, err)
				}
				values[r] = val
			}
			e, err := compileEntry(r, irvh, val)
			if err != nil {
				return nil, fmt.Errorf("route %s: %w", r.Name, err)
			}
			switch r.Match.PathType {
			case ir.PathExact:
				v.exact[e.path] = append(v.exact[e.path], e)
			case ir.PathRegularExpression:
				v.regex = append(v.regex, e)
			default:
				v.prefix[e.path] = append(v.prefix[e.path], e)
				v.maxPrefix = max(v.maxPrefix, len(e.path))
			}
		}
		g.vhosts.Add(irvh.Hostname, v)
	}
	t.groups.Sort()
	for _, g := range groups {
		g.vhosts.Sort()
	}
	return t, nil
}

func compileEntry[T any](r *ir.Route, vh *ir.VirtualHost, val T) (*Entry[T], error) {
	e := &Entry[T]{Route: r, VirtualHost: vh, Value: val, method: r.Match.Method}
	switch r.Match.PathType {
	case ir.PathRegularExpression:
		re, err := regexp.Compile("^(?:" + r.Match.Path + ")$")
		if err != nil {
			return nil, err
		}
		e.re = re
	case ir.PathExact:
		e.path = r.Match.Path
	default:
		e.path = trimPrefix(r.Match.Path)
	}
	for _, h := range r.Match.Headers {
		m, err := compileMatch(http.CanonicalHeaderKey(h.Name), h)
		if err != nil {
			return nil, err
		}
		e.headers = append(e.headers, m)
	}
	for _, q := range r.Match.QueryParams {
		m, err := compileMatch(q.Name, q)
		if err != nil {
			return nil, err
		}
		e.queries = append(e.queries, m)
	}
	return e, nil
}

func compileMatch(name string, m ir.StringMatch) (compiledMatch, error) {
	c := compiledMatch{name: name, exact: m.Value}
	if m.Type == ir.MatchRegularExpression {
		re, err := regexp.Compile(m.Value)
		if err != nil {
			return c, err
		}
		c.re = re
	}
	return c, nil
}

// trimPrefix drops a trailing slash: Gateway API prefixes match whole segments, so "/abc/"
// and "/abc" both match "/abc", "/abc/" and "/abc/d" but not "/abcd".
func trimPrefix(p string) string {
	if len(p) > 1 && strings.HasSuffix(p, "/") {
		return strings.TrimRight(p, "/")
	}
	return p
}

// Request is what matching looks at. Host must be lower case without port.
type Request struct {
	Host     string
	Method   string
	Path     string
	Header   http.Header
	RawQuery string
}

// Match returns the entry serving the request, or nil.
func (t *Table[T]) Match(req *Request) *Entry[T] {
	g, _ := t.groups.Lookup(req.Host)
	if g == nil {
		return nil
	}
	var found *Entry[T]
	g.vhosts.Each(req.Host, func(v *vhost[T]) bool {
		found = v.match(req)
		return found != nil
	})
	return found
}

// SameListener reports whether hosts a and b select the same listener: the most
// specific Gateway listener hostname matching each (or no listener for both).
// HTTPS sockets use it to answer 421 Misdirected Request when the connection's
// SNI chose a different listener than the request's Host, as happens when a
// client reuses (coalesces) one connection for several hostnames.
func (t *Table[T]) SameListener(a, b string) bool {
	ga, _ := t.groups.Lookup(a)
	gb, _ := t.groups.Lookup(b)
	return ga == gb
}

func (v *vhost[T]) match(req *Request) *Entry[T] {
	// Precedence classes never interleave: every exact path precedes every regular expression,
	// which precedes every prefix; longer prefixes precede shorter ones.
	for _, e := range v.exact[req.Path] {
		if e.conditions(req) {
			return e
		}
	}
	for _, e := range v.regex {
		if e.re.MatchString(req.Path) && e.conditions(req) {
			return e
		}
	}
	// Walk the path's segment prefixes from longest to "/": "/a/b/c", "/a/b", "/a", "/".
	p := req.Path
	for {
		if len(p) <= v.maxPrefix {
			for _, e := range v.prefix[p] {
				if e.conditions(req) {
					return e
				}
			}
		}
		if len(p) <= 1 {
			return nil
		}
		if i := strings.LastIndexByte(p, '/'); i > 0 {
			p = p[:i]
		} else {
			p = "/"
		}
	}
}

func (e *Entry[T]) conditions(req *Request) bool {
	if e.method != "" && e.method != req.Method {
		return false
	}
	for i := range e.headers {
		h := &e.headers[i]
		vals := req.Header[h.name]
		if len(vals) == 0 {
			return false
		}
		if !h.matches(vals[0]) {
			return false
		}
	}
	for i := range e.queries {
		q := &e.queries[i]
		v, ok := queryValue(req.RawQuery, q.name)
		if !ok || !q.matches(v) {
			return false
		}
	}
	return true
}

func (m *compiledMatch) matches(v string) bool {
	if m.re != nil {
		return m.re.MatchString(v)
	}
	return v == m.exact
}

// queryValue returns the first value of a query parameter without allocating unless the
// raw value is escaped.
func queryValue(raw, name string) (string, bool) {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		if strings.ContainsAny(k, "%+") {
			k = unescape(k)
		}
		if k != name {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			v = unescape(v)
		}
		return v, true
	}
	return "", false
}

// Candidate is a route considered for a request and why it did not serve it ("" = it did).
type Candidate[T any] struct {
	Entry  *Entry[T]
	Reason string
}

// Explain lists, in evaluation order, every route of the virtual hosts the request's host
// selects, with the reason each did not match; the first with an empty reason serves the request.
func (t *Table[T]) Explain(req *Request) []Candidate[T] {
	g, _ := t.groups.Lookup(req.Host)
	if g == nil {
		return nil
	}
	var out []Candidate[T]
	matched := false
	g.vhosts.Each(req.Host, func(v *vhost[T]) bool {
		for _, e := range v.ordered() {
			reason := e.explain(req)
			if matched && reason == "" {
				reason = "a route earlier in precedence order already matched"
			}
			if reason == "" {
				matched = true
			}
			out = append(out, Candidate[T]{Entry: e, Reason: reason})
		}
		return false
	})
	return out
}

// ordered returns the virtual host's entries in evaluation order.
func (v *vhost[T]) ordered() []*Entry[T] {
	var out []*Entry[T]
	for _, r := range v.vh.Routes {
		for _, list := range []map[string][]*Entry[T]{v.exact, v.prefix} {
			for _, es := range list {
				for _, e := range es {
					if e.Route == r {
						out = append(out, e)
					}
				}
			}
		}
		for _, e := range v.regex {
			if e.Route == r {
				out = append(out, e)
			}
		}
	}
	return out
}

// explain returns why the entry does not match the request, or "".
func (e *Entry[T]) explain(req *Request) string {
	switch {
	case e.re != nil:
		if !e.re.MatchString(req.Path) {
			return "path does not match regular expression " + e.Route.Match.Path
		}
	case e.Route.Match.PathType == ir.PathExact:
		if req.Path != e.path {
			return "path is not exactly " + e.path
		}
	default:
		if e.path != "/" && req.Path != e.path && !strings.HasPrefix(req.Path, e.path+"/") {
			return "path is not under prefix " + e.path
		}
	}
	if e.method != "" && e.method != req.Method {
		return "method is not " + e.method
	}
	for _, h := range e.headers {
		vals := req.Header[h.name]
		if len(vals) == 0 {
			return "header " + h.name + " is missing"
		}
		if !h.matches(vals[0]) {
			return "header " + h.name + " does not match"
		}
	}
	for _, q := range e.queries {
		v, ok := queryValue(req.RawQuery, q.name)
		if !ok {
			return "query parameter " + q.name + " is missing"
		}
		if !q.matches(v) {
			return "query parameter " + q.name + " does not match"
		}
	}
	return ""
}
