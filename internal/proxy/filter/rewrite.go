package filter

import (
	"errors"
	"strings"

	"apoxy.dev/apoxy/internal/ir"
)

// urlRewrite is Gateway API's URLRewrite: it changes the host and path the upstream sees.
type urlRewrite struct {
	rw    *ir.URLRewrite
	match *ir.Match
}

func newURLRewrite(f *ir.Filter, r *ir.Route, _ *Env) (Stage, error) {
	if f.URLRewrite == nil {
		return nil, errors.New("urlRewrite is not set")
	}
	return &urlRewrite{rw: f.URLRewrite, match: &r.Match}, nil
}

// Contained: Serve works on the request's goroutine and keeps nothing of it.
func (*urlRewrite) Contained() {}

func (s *urlRewrite) Serve(x *Exchange) bool {
	if s.rw.Hostname != "" {
		x.Req.Host = s.rw.Hostname
	}
	if p := s.rw.Path; p != nil {
		x.Req.URL.Path = RewritePath(x.Req.URL.Path, p, s.match)
		x.Req.URL.RawPath = ""
	}
	return false
}

// RewritePath applies a path modifier to path: a full replacement, or the replacement of the
// prefix the route matched (only for prefix matches, and only when path still starts with
// it). The result keeps the rest of the path after the prefix as it was.
func RewritePath(path string, p *ir.PathRewrite, m *ir.Match) string {
	if p.FullPath != nil {
		return *p.FullPath
	}
	if p.PrefixReplace == nil || m.PathType != ir.PathPrefix {
		return path
	}
	prefix := strings.TrimRight(m.Path, "/")
	rest, ok := strings.CutPrefix(path, prefix)
	if !ok || (rest != "" && rest[0] != '/') {
		return path
	}
	repl := *p.PrefixReplace
	if repl == "/" || repl == "" {
		if rest == "" {
			return "/"
		}
		return rest
	}
	return strings.TrimRight(repl, "/") + rest
}
