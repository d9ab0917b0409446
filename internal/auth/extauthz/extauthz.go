// Package extauthz asks an external authorization service whether a request may pass: the
// AuthPolicy extAuth block (design §2.4). Two clients share one interface:
//
//   - GRPCClient speaks Envoy's envoy.service.auth.v3.Authorization/Check, so services
//     written for Envoy (OPA-Envoy, Authorino, ...) work unchanged;
//   - HTTPClient sends the request's method, pathPrefix + path, chosen headers and body to an
//     HTTP service: a 200 allows, a 5xx is a failure of the service, and any other answer is
//     relayed to the client (Envoy's HTTP ext_authz semantics).
//
// The package is a pure library: it knows neither the API types nor the proxy. A filter
// stage uses it like this:
//
//  1. delete the headersToUpstream names from the client's request (a client must not
//     pre-set what the service vouches for);
//  2. fill a Request: headers through a HeaderFilter of headersToAuthz, the body (when
//     includeBody is set) through BufferBody, answering 413 to a partial body unless
//     allowPartial;
//  3. call Check with a context bounded by the block's timeout;
//  4. on an error, apply failureMode: FailOpen passes (log OutcomeOf), FailClosed answers
//     statusOnError (or the service's Error.Reply);
//  5. on a Decision that allows, ApplyUpstream to the upstream request's headers (and
//     ApplyMutations of Response to the client's response); otherwise answer Status with
//     HeadersToClient and Body.
//
// Whatever the service answers, it can never change pseudo-headers, Host (:authority),
// :path, the framing headers or hop-by-hop headers (see Protected): such mutations are
// dropped and named in Decision.Refused.
package extauthz

import (
	"context"
	"net/http"
	"net/netip"
	"time"
)

// Client asks an authorization service about one request. It is safe for concurrent use.
//
// A nil error means the service answered: the Decision allows or denies. A non-nil error
// (always an *Error) means the service failed to answer (unreachable, timed out, bad reply,
// or it reported an internal error); the caller then applies its failure mode.
type Client interface {
	Check(ctx context.Context, req *Request) (*Decision, error)
}

// Request is what the service is told about the client's request. The caller fills it; Check
// does not modify it.
type Request struct {
	// ID identifies the request (x-request-id or equivalent); gRPC only.
	ID string
	// Method is the client's method; the HTTP check request uses it too (Envoy semantics).
	Method string
	// Scheme is "http" or "https", as the client used; gRPC only.
	Scheme string
	// Host is the client's Host / :authority.
	Host string
	// Path is the request target as received: path and query, not decoded.
	Path string
	// Protocol is the client's protocol, such as "HTTP/1.1" or "HTTP/2" (Go's "HTTP/2.0" is
	// accepted and sent as "HTTP/2"); gRPC only.
	Protocol string
	// Headers are the request headers to send, already limited to what may be sent (see
	// FilterHeaders). Check never modifies them.
	Headers http.Header
	// ContentLength is the client's body size as in http.Request.ContentLength: -1 when
	// unknown. gRPC only (attributes.request.http.size).
	ContentLength int64
	// Body is the buffered request body to include; nil to include none. BodyPartial says it
	// is only the first part of a larger body (see BufferBody).
	Body        []byte
	BodyPartial bool
	// ClientAddr is the client's address (attributes.source) and DestAddr the listener's
	// (attributes.destination); gRPC only, omitted when invalid.
	ClientAddr netip.AddrPort
	DestAddr   netip.AddrPort
	// SNI is the TLS server name the client sent, if any; gRPC only (attributes.tls_session).
	SNI string
	// Received is when the gateway received the request; gRPC only, omitted when zero.
	Received time.Time
	// ContextExtensions are added to the client's configured ones (overriding on conflict);
	// gRPC only (attributes.context_extensions).
	ContextExtensions map[string]string
	// RouteMetadata describes the matched route (route, namespace, policy); gRPC only, sent
	// under RouteMetadataNamespace in metadata_context and route_metadata_context. Nil sends
	// none.
	RouteMetadata map[string]string
}

// Decision is the service's answer.
type Decision struct {
	// Allowed says the request may go on to the upstream.
	Allowed bool
	// Status is the HTTP status to answer the client with when denied (the service's, 403 when
	// it gave none or one that cannot be sent). 0 when allowed.
	Status int
	// Body is the denial's response body, at most the client's response body limit
	// (BodyTruncated says it was cut there).
	Body          []byte
	BodyTruncated bool
	// HeadersToClient are the headers of the denial's response (already limited to the
	// caller's headersToClient list); nil when allowed.
	HeadersToClient http.Header
	// Upstream are the changes to make to the upstream request when allowed, in order; then
	// UpstreamRemove names the headers to delete. ApplyUpstream does both.
	Upstream       []HeaderMutation
	UpstreamRemove []string
	// Response are changes to make to the response sent to the client when allowed (gRPC
	// ok_response.response_headers_to_add), limited like HeadersToClient.
	Response []HeaderMutation
	// Refused names the headers the service tried to set, append or remove but may not:
	// forbidden ones, ones outside the caller's lists, and invalid names or values. For the
	// access log; never acted on.
	Refused []string
}

// ApplyUpstream makes the Decision's upstream changes to h, the upstream request's headers:
// the mutations in order, then the removals.
func (d *Decision) ApplyUpstream(h http.Header) {
	ApplyMutations(h, d.Upstream)
	for _, name := range d.UpstreamRemove {
		h.Del(name)
	}
}

// Action is how a HeaderMutation changes a header (Envoy's HeaderValueOption.append_action).
type Action int

// The actions. AppendOrAdd is Envoy's default.
const (
	// AppendOrAdd adds the value to the header's values, creating the header if absent.
	AppendOrAdd Action = iota
	// AddIfAbsent sets the header only if it is absent.
	AddIfAbsent
	// OverwriteOrAdd replaces all of the header's values, creating it if absent.
	OverwriteOrAdd
	// OverwriteIfExists replaces the header's values only if it is present.
	OverwriteIfExists
)

// String names the action as Envoy does.
func (a Action) String() string {
	switch a {
	case AppendOrAdd:
		return "APPEND_IF_EXISTS_OR_ADD"
	case AddIfAbsent:
		return "ADD_IF_ABSENT"
	case OverwriteOrAdd:
		return "OVERWRITE_IF_EXISTS_OR_ADD"
	case OverwriteIfExists:
		return "OVERWRITE_IF_EXISTS"
	default:
		return "UNKNOWN"
	}
}

// HeaderMutation is one header change: Name is in canonical form, Name and Value are valid
// HTTP field names and values, and Name is never a header a service may not change.
type HeaderMutation struct {
	Name   string
	Value  string
	Action Action
}

// ApplyMutations applies ms to h in order.
func ApplyMutations(h http.Header, ms []HeaderMutation) {
	for _, m := range ms {
		switch m.Action {
		case AppendOrAdd:
			h[m.Name] = append(h[m.Name], m.Value)
		case AddIfAbsent:
			if len(h[m.Name]) == 0 {
				h[m.Name] = []string{m.Value}
			}
		case OverwriteOrAdd:
			h[m.Name] = []string{m.Value}
		case OverwriteIfExists:
			if len(h[m.Name]) > 0 {
				h[m.Name] = []string{m.Value}
			}
		}
	}
}
