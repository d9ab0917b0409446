package extauthz

import (
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// HeaderFilter is a case-insensitive set of header names where the empty set means every
// header, the meaning all the extAuth lists (headersToAuthz, headersToUpstream,
// headersToClient) give an empty list. The zero value allows everything. Build it once per
// configuration: Allows does not allocate for canonical names.
type HeaderFilter struct {
	names map[string]struct{}
}

// NewHeaderFilter returns the filter for names; empty names (and only them) allow all.
func NewHeaderFilter(names []string) HeaderFilter {
	if len(names) == 0 {
		return HeaderFilter{}
	}
	f := HeaderFilter{names: make(map[string]struct{}, len(names))}
	for _, n := range names {
		f.names[http.CanonicalHeaderKey(strings.TrimSpace(n))] = struct{}{}
	}
	return f
}

// All reports whether the filter allows every header.
func (f HeaderFilter) All() bool { return len(f.names) == 0 }

// Allows reports whether name is in the set, ignoring case (always true for the empty set).
func (f HeaderFilter) Allows(name string) bool {
	if len(f.names) == 0 {
		return true
	}
	if _, ok := f.names[name]; ok {
		return true
	}
	_, ok := f.names[http.CanonicalHeaderKey(name)]
	return ok
}

// Filter returns a copy of the headers of h that the filter allows. The value slices are
// copied, so the result can be changed without touching h.
func (f HeaderFilter) Filter(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, vs := range h {
		if f.Allows(k) {
			out[k] = append([]string(nil), vs...)
		}
	}
	return out
}

// FilterHeaders returns the headers of h that may be sent to the authorization service:
// every header when allow is empty (in both protocols: design case 91), otherwise only those
// allow names, ignoring case. Callers checking many requests should build a HeaderFilter
// once instead.
func FilterHeaders(h http.Header, allow []string) http.Header {
	return NewHeaderFilter(allow).Filter(h)
}

// Protected reports whether a service may never change the header name, on the upstream
// request nor on the client's response: pseudo-headers (":path", ":authority", ...), Host,
// the message framing headers (Content-Length, Transfer-Encoding, Trailer) and the hop-by-hop
// headers (Connection, Keep-Alive, Proxy-*, TE, Upgrade). Changing any of them would let the
// service re-route the request, break its framing, or smuggle connection-level behaviour.
func Protected(name string) bool {
	if strings.HasPrefix(name, ":") {
		return true
	}
	if len(name) >= len("proxy-") && strings.EqualFold(name[:len("proxy-")], "proxy-") {
		return true
	}
	for _, p := range protectedNames {
		if strings.EqualFold(name, p) {
			return true
		}
	}
	return false
}

var protectedNames = [...]string{
	"Host", "Content-Length", "Transfer-Encoding", "Trailer",
	"Connection", "Keep-Alive", "Te", "Upgrade",
}

// maxRefused bounds Decision.Refused, so a hostile service cannot blow up a log line.
const maxRefused = 16

// mutationCheck collects the mutations a service asks for, refusing those it may not make.
type mutationCheck struct {
	allow   HeaderFilter
	refused *[]string
}

// name returns the canonical name to change, or false (and records the refusal) when the
// change may not happen: an invalid or protected name, one outside the allow list, or (for
// a value being set) an invalid value.
func (c mutationCheck) name(name string, value *string) (string, bool) {
	if !httpguts.ValidHeaderFieldName(name) || Protected(name) || !c.allow.Allows(name) ||
		(value != nil && !httpguts.ValidHeaderFieldValue(*value)) {
		c.refuse(name)
		return "", false
	}
	return http.CanonicalHeaderKey(name), true
}

func (c mutationCheck) refuse(name string) {
	if c.refused == nil || len(*c.refused) >= maxRefused {
		return
	}
	*c.refused = append(*c.refused, logSafeName(name))
}

// logSafeName is name if it is a valid header name (canonicalized), else a quoted, bounded
// form of it, so that a refused name can go into a log line as is.
func logSafeName(name string) string {
	if httpguts.ValidHeaderFieldName(name) {
		if len(name) > 64 {
			name = name[:64]
		}
		return http.CanonicalHeaderKey(name)
	}
	if strings.HasPrefix(name, ":") && len(name) <= 64 && httpguts.ValidHeaderFieldName(name[1:]) {
		return name
	}
	if len(name) > 64 {
		name = name[:64]
	}
	return strconv.QuoteToASCII(name)
}

// requestHeadersToSend copies h for an HTTP check request: without the headers that
// belong to the client's connection or message framing (which the transport sets itself).
// Headers the client's Connection header names are hop-by-hop too (RFC 9110 §7.6.1), and
// values that could not be sent are left out rather than failing the check.
func requestHeadersToSend(h http.Header) http.Header {
	var connOpts []string
	for _, v := range h.Values("Connection") {
		for _, o := range strings.Split(v, ",") {
			if o = strings.TrimSpace(o); o != "" {
				connOpts = append(connOpts, o)
			}
		}
	}
	out := make(http.Header, len(h)+1)
next:
	for k, vs := range h {
		if Protected(k) || strings.EqualFold(k, "Expect") || !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, o := range connOpts {
			if strings.EqualFold(k, o) {
				continue next
			}
		}
		kept := make([]string, 0, len(vs))
		for _, v := range vs {
			if httpguts.ValidHeaderFieldValue(v) {
				kept = append(kept, v)
			}
		}
		if len(kept) > 0 {
			out[http.CanonicalHeaderKey(k)] = kept
		}
	}
	return out
}
