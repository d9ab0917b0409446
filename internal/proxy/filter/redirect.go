package filter

import (
	"net"
	"net/url"
	"strconv"

	"apoxy.dev/apoxy/internal/hostname"
	"apoxy.dev/apoxy/internal/ir"
)

// redirect answers with a Location built as Gateway API's RequestRedirect filter defines: the
// scheme, hostname, port and path default to the request's; a port equal to the scheme's
// default is left out.
type redirect struct {
	rd    *ir.Redirect
	match *ir.Match
}

func newRedirect(r *ir.Route, _ *Env) (Stage, error) {
	if r.Redirect == nil {
		return nil, nil
	}
	return &redirect{rd: r.Redirect, match: &r.Match}, nil
}

// Contained: Serve works on the request's goroutine and keeps nothing of it.
func (*redirect) Contained() {}

func (s *redirect) Serve(x *Exchange) bool {
	r, rd := x.Req, s.rd
	scheme := x.Scheme
	if r.TLS != nil {
		scheme = "https"
	}
	if rd.Scheme != "" {
		scheme = rd.Scheme
	}
	host := hostname.FromHostHeader(r.Host)
	if rd.Hostname != "" {
		host = rd.Hostname
	}
	port := int(rd.Port)
	if port == 0 {
		if rd.Scheme != "" {
			port = defaultPortFor(scheme) // a scheme change without a port implies the scheme's port
		} else if _, p, err := net.SplitHostPort(r.Host); err == nil {
			port, _ = strconv.Atoi(p)
		} else {
			port = int(x.Port)
		}
	}
	// Location carries the escaped path: decoded bytes (NUL, %FF, "%3F" read as '?') would
	// change what it names or break the header.
	path := r.URL.EscapedPath()
	if rd.Path != nil {
		path = (&url.URL{Path: RewritePath(r.URL.Path, rd.Path, s.match)}).EscapedPath()
	}
	loc := scheme + "://" + host
	if port != 0 && port != defaultPortFor(scheme) {
		loc += ":" + strconv.Itoa(port)
	}
	loc += path
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	x.W.Header().Set("Location", loc)
	x.W.WriteHeader(rd.StatusCode)
	return true
}

func defaultPortFor(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}
