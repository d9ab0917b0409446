package extauthz

import (
	"context"
	"net"
	"net/http"
	"strings"
	"unicode/utf8"
)

// DialFunc opens a connection to addr (host:port). The caller gives one to reach the service
// through its own Backend clusters; nil dials TCP directly.
type DialFunc func(ctx context.Context, addr string) (net.Conn, error)

func dialOrDefault(d DialFunc) DialFunc {
	if d != nil {
		return d
	}
	var nd net.Dialer
	return func(ctx context.Context, addr string) (net.Conn, error) {
		return nd.DialContext(ctx, "tcp", addr)
	}
}

// DefaultMaxResponseBody bounds the denial body kept from a service's answer when the
// configuration gives no limit: enough for any error page or JSON problem document, small
// enough that a hostile or broken service cannot make the gateway buffer much per request.
const DefaultMaxResponseBody = 64 << 10

// DefaultDeniedStatus is the status of a denial that names none, or one that cannot be sent.
const DefaultDeniedStatus = http.StatusForbidden

// partialBodyHeader tells the service whether the body it got is whole (Envoy's header).
const partialBodyHeader = "x-envoy-auth-partial-body"

// headersToRemoveHeader is how an HTTP service names request headers to remove (Envoy's
// header); it is never passed on to the client or the upstream.
const headersToRemoveHeader = "X-Envoy-Auth-Headers-To-Remove"

// replyPolicy is what a client does with a service's answer: which mutations it accepts and
// how much body it keeps.
type replyPolicy struct {
	// upstream limits the headers set, appended or removed on the upstream request.
	upstream HeaderFilter
	// client limits the headers sent to the client (denial, or allow-time response headers).
	client  HeaderFilter
	maxBody int
}

func newReplyPolicy(toUpstream, toClient []string, maxBody int) replyPolicy {
	if maxBody <= 0 {
		maxBody = DefaultMaxResponseBody
	}
	return replyPolicy{
		upstream: NewHeaderFilter(toUpstream),
		client:   newClientFilter(toClient),
		maxBody:  maxBody,
	}
}

// newClientFilter is the headersToClient filter. As Envoy does, a non-empty list also lets
// WWW-Authenticate and Location through: a 401 or a redirect is useless without them.
func newClientFilter(names []string) HeaderFilter {
	if len(names) == 0 {
		return HeaderFilter{}
	}
	return NewHeaderFilter(append(append([]string(nil), names...), "WWW-Authenticate", "Location"))
}

// deniedStatus is the status to send for a denial that asked for code: 403 when it asked for
// none, or one that is not a final status a client can be sent.
func deniedStatus(code int) int {
	if code < 200 || code > 599 {
		return DefaultDeniedStatus
	}
	return code
}

// capBody returns b cut to max bytes and whether it was cut.
func capBody(b []byte, max int) ([]byte, bool) {
	if len(b) > max {
		return b[:max:max], true
	}
	return b, false
}

// utf8Safe returns s with every byte that is not part of valid UTF-8 replaced by '!', as
// Envoy does for header values: protobuf strings must be UTF-8.
func utf8Safe(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && n == 1 {
			b.WriteByte('!')
		} else {
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return b.String()
}
