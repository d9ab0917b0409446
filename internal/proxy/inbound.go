package proxy

import (
	"errors"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"slices"
	"strings"

	"apoxy.dev/apoxy/internal/proxy/pathnorm"
)

// UnderscoreAction is what the gateway does with request headers whose names contain '_'.
// CGI and WSGI backends map both X-Forwarded-For and X_Forwarded_For to the same variable, so
// a client could smuggle a value past a header the gateway sets or removes.
type UnderscoreAction uint8

// Underscore actions.
const (
	// DropUnderscoreHeaders (the default, as nginx) removes such headers.
	DropUnderscoreHeaders UnderscoreAction = iota
	// RejectUnderscoreHeaders answers 400.
	RejectUnderscoreHeaders
	// AllowUnderscoreHeaders passes them on.
	AllowUnderscoreHeaders
)

// ParseUnderscoreAction reads "drop", "reject" or "allow".
func ParseUnderscoreAction(s string) (UnderscoreAction, error) {
	switch strings.ToLower(s) {
	case "", "drop":
		return DropUnderscoreHeaders, nil
	case "reject":
		return RejectUnderscoreHeaders, nil
	case "allow":
		return AllowUnderscoreHeaders, nil
	}
	return 0, errors.New(`headers with underscores: want "drop", "reject" or "allow"`)
}

// RequestPolicy is how the gateway cleans an inbound request before anything else (routing,
// filters, forwarding) sees it.
type RequestPolicy struct {
	// Paths configures path normalisation (default: dot segments removed, slashes merged,
	// encoded slashes and backslashes refused with 400).
	Paths pathnorm.Options
	// TrustedProxies are the client addresses whose X-Forwarded-*, Forwarded, X-Real-IP and
	// X-Request-Id headers are kept (the gateway appends to X-Forwarded-For). From any other
	// client they are removed: the gateway's own values are the only ones upstream.
	TrustedProxies []netip.Prefix
	// Underscores: headers with '_' in their names (default dropped).
	Underscores UnderscoreAction
}

// trusted reports whether the request's peer is a trusted proxy.
func (p *RequestPolicy) trusted(r *http.Request) bool {
	if len(p.TrustedProxies) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, pfx := range p.TrustedProxies {
		if pfx.Contains(ip) {
			return true
		}
	}
	return false
}

// forwardedClient walks X-Forwarded-For from the nearest hop back and returns the first
// address that is not a trusted proxy (the client as the trusted chain saw it); when every
// hop is trusted, the farthest one. Invalid when the header holds no address.
func (p *RequestPolicy) forwardedClient(xff []string) netip.Addr {
	var client netip.Addr
	for i := len(xff) - 1; i >= 0; i-- {
		hops := strings.Split(xff[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(textproto.TrimString(hops[j]))
			if err != nil {
				return client // a hop we cannot read: trust nothing before it
			}
			client = a.Unmap()
			if !slices.ContainsFunc(p.TrustedProxies, func(pfx netip.Prefix) bool { return pfx.Contains(client) }) {
				return client
			}
		}
	}
	return client
}

// inbound is what the cleaning step learned about a request.
type inbound struct {
	// trailers: the client asked for trailers (TE: trailers), passed on upstream.
	trailers bool
	// upgrade: a protocol upgrade (Connection: upgrade + Upgrade), kept for the upgrade path.
	upgrade bool
	// trusted: the peer is a trusted proxy.
	trusted bool
	// client is the client's address when a trusted proxy forwarded the request (the last
	// X-Forwarded-For hop that is not itself a trusted proxy); invalid otherwise, and the
	// peer is the client.
	client netip.Addr
}

// cleanInbound prepares a request for routing: the path is normalised (what routes match and
// what goes upstream), hop-by-hop headers and those the client's Connection header names are
// removed before any filter runs (so a client cannot delete a header the gateway adds),
// forwarding headers from untrusted clients are dropped, and underscore headers handled. A
// non-zero status means the request is refused with that status and message.
func (p *RequestPolicy) cleanInbound(r *http.Request, in *inbound) (int, string) {
	if code, msg := p.normalizePath(r); code != 0 {
		return code, msg
	}
	h := r.Header
	in.trusted = p.trusted(r)
	if in.trusted {
		in.client = p.forwardedClient(r.Header["X-Forwarded-For"])
	}
	in.trailers = wantsTrailers(h)
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			f = textproto.TrimString(f)
			if strings.EqualFold(f, "upgrade") {
				in.upgrade = len(h["Upgrade"]) > 0
				continue
			}
			if f != "" {
				h.Del(f)
			}
		}
	}
	upgrade := h["Upgrade"]
	for k := range h {
		switch k {
		case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
			delete(h, k)
		case "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port", "X-Forwarded-Prefix", "Forwarded", "X-Real-Ip", "X-Request-Id":
			if !in.trusted {
				delete(h, k)
			}
		default:
			if p.Underscores != AllowUnderscoreHeaders && strings.IndexByte(k, '_') >= 0 {
				if p.Underscores == RejectUnderscoreHeaders {
					return http.StatusBadRequest, "header names with underscores are not accepted: " + k
				}
				delete(h, k)
			}
		}
	}
	if in.upgrade {
		h["Connection"] = valueUpgrade
		h["Upgrade"] = upgrade
	}
	return 0, ""
}

var valueUpgrade = []string{"Upgrade"}

// normalizePath normalises r.URL's path in place (see internal/proxy/pathnorm).
func (p *RequestPolicy) normalizePath(r *http.Request) (int, string) {
	u := r.URL
	if r.Method == http.MethodConnect || u.Path == "*" && u.RawPath == "" || u.Opaque != "" {
		return 0, ""
	}
	raw := u.RawPath
	if raw == "" {
		raw = u.Path // no escapes were needed: the path is its own escaped form
		if strings.ContainsAny(raw, "%?#") {
			raw = u.EscapedPath()
		}
	}
	esc, dec, err := pathnorm.Normalize(raw, p.Paths)
	if err != nil {
		return http.StatusBadRequest, "the request path is refused: " + strings.TrimPrefix(err.Error(), "pathnorm: ")
	}
	if esc == raw && u.RawPath == "" && dec == u.Path {
		return 0, ""
	}
	u.Path = dec
	u.RawPath = ""
	if (&url.URL{Path: dec}).EscapedPath() != esc {
		u.RawPath = esc // escapes Go would not choose (kept %2F, uppercase hex...)
	}
	return 0, ""
}
