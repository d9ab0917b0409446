package extauthz

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// RouteMetadataNamespace is the filter_metadata key under which Request.RouteMetadata is sent
// in the CheckRequest's metadata_context (and route_metadata_context).
const RouteMetadataNamespace = "apoxy.route"

// maxReconnectDelay caps gRPC's reconnect backoff (default two minutes) so that the gateway
// notices a recovered authorization service within seconds, not minutes, of it coming back.
const maxReconnectDelay = 5 * time.Second

// GRPCConfig configures a GRPCClient.
type GRPCConfig struct {
	// Conn is the connection to the service. When nil, NewGRPC opens one to Target with Dial
	// and TLS, and Close closes it; an injected Conn is left to its owner.
	Conn grpc.ClientConnInterface
	// Target is the service's address (host:port), passed to Dial.
	Target string
	// Dial opens connections to the service; nil dials TCP directly.
	Dial DialFunc
	// TLS, when set, secures the connection (the Backend's tls/h2 protocol); nil speaks h2c.
	TLS *tls.Config
	// Authority overrides the :authority of the calls (default Target).
	Authority string

	// ContextExtensions go in every CheckRequest's attributes.context_extensions.
	ContextExtensions map[string]string
	// HeadersToUpstream limits the upstream headers an allowing answer may set, append or
	// remove; empty allows all but Protected ones.
	HeadersToUpstream []string
	// HeadersToClient limits the headers of a denial (and the response headers of an allow)
	// sent to the client; empty allows all but Protected ones. WWW-Authenticate and Location
	// are always allowed.
	HeadersToClient []string
	// PackBodyAsBytes sends the body in raw_body rather than body (Envoy's pack_as_bytes). A
	// body that is not valid UTF-8 always goes in raw_body, as a protobuf string cannot hold it.
	PackBodyAsBytes bool
	// MaxResponseBody bounds a denial body (0: DefaultMaxResponseBody); longer ones are cut.
	MaxResponseBody int
}

// GRPCClient checks requests with Envoy's envoy.service.auth.v3.Authorization/Check.
type GRPCClient struct {
	client    authv3.AuthorizationClient
	closer    interface{ Close() error }
	ctxExt    map[string]string
	packBytes bool
	policy    replyPolicy
	callOpts  []grpc.CallOption
}

var _ Client = (*GRPCClient)(nil)

// NewGRPC returns a client for cfg. Without cfg.Conn it opens a connection lazily (the first
// Check connects), so it does not fail when the service is down.
func NewGRPC(cfg GRPCConfig) (*GRPCClient, error) {
	c := &GRPCClient{
		packBytes: cfg.PackBodyAsBytes,
		policy:    newReplyPolicy(cfg.HeadersToUpstream, cfg.HeadersToClient, cfg.MaxResponseBody),
	}
	// The reply holds at most a denial body and a bounded number of headers; allow some room
	// for the headers beyond the body limit.
	c.callOpts = []grpc.CallOption{grpc.MaxCallRecvMsgSize(c.policy.maxBody + 1<<20)}
	if len(cfg.ContextExtensions) > 0 {
		c.ctxExt = make(map[string]string, len(cfg.ContextExtensions))
		for k, v := range cfg.ContextExtensions {
			c.ctxExt[utf8Safe(k)] = utf8Safe(v)
		}
	}
	conn := cfg.Conn
	if conn == nil {
		if cfg.Target == "" {
			return nil, errors.New("extauthz: gRPC config has neither Conn nor Target")
		}
		dial := dialOrDefault(cfg.Dial)
		var creds credentials.TransportCredentials = insecure.NewCredentials()
		if cfg.TLS != nil {
			creds = credentials.NewTLS(cfg.TLS.Clone())
		}
		bo := backoff.DefaultConfig
		bo.MaxDelay = maxReconnectDelay
		opts := []grpc.DialOption{
			grpc.WithTransportCredentials(creds),
			grpc.WithContextDialer(dial),
			grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: maxReconnectDelay}),
		}
		if cfg.Authority != "" {
			opts = append(opts, grpc.WithAuthority(cfg.Authority))
		}
		// passthrough: the address goes to Dial as is; the caller's Dial does the resolving.
		cc, err := grpc.NewClient("passthrough:///"+cfg.Target, opts...)
		if err != nil {
			return nil, fmt.Errorf("extauthz: gRPC client for %q: %w", cfg.Target, err)
		}
		conn, c.closer = cc, cc
	}
	c.client = authv3.NewAuthorizationClient(conn)
	return c, nil
}

// Close closes the connection NewGRPC opened (not an injected one).
func (c *GRPCClient) Close() error {
	if c.closer == nil {
		return nil
	}
	return c.closer.Close()
}

// Check asks the service about r. The context's deadline is the check's timeout.
func (c *GRPCClient) Check(ctx context.Context, r *Request) (*Decision, error) {
	resp, err := c.client.Check(ctx, c.CheckRequest(r), c.callOpts...)
	if err != nil {
		return nil, grpcError(ctx, err)
	}
	return c.decide(resp)
}

// CheckRequest builds the CheckRequest for r the way Envoy's ext_authz filter does. It is
// exported for logging and tests; Check calls it.
func (c *GRPCClient) CheckRequest(r *Request) *authv3.CheckRequest {
	hr := &authv3.AttributeContext_HttpRequest{
		Id:       utf8Safe(r.ID),
		Method:   utf8Safe(r.Method),
		Headers:  headerMap(r),
		Path:     utf8Safe(r.Path),
		Host:     utf8Safe(r.Host),
		Scheme:   utf8Safe(r.Scheme),
		Protocol: protocolString(r.Protocol),
		Size:     r.ContentLength,
	}
	if hr.Size < 0 {
		hr.Size = -1
	}
	if r.Body != nil {
		if c.packBytes || !utf8.Valid(r.Body) {
			hr.RawBody = r.Body
		} else {
			hr.Body = string(r.Body)
		}
	}
	attrs := &authv3.AttributeContext{
		Source:            peer(r.ClientAddr),
		Destination:       peer(r.DestAddr),
		Request:           &authv3.AttributeContext_Request{Http: hr},
		ContextExtensions: c.contextExtensions(r.ContextExtensions),
	}
	if !r.Received.IsZero() {
		attrs.Request.Time = timestamppb.New(r.Received)
	}
	if r.SNI != "" {
		attrs.TlsSession = &authv3.AttributeContext_TLSSession{Sni: utf8Safe(r.SNI)}
	}
	if r.RouteMetadata != nil {
		fields := make(map[string]*structpb.Value, len(r.RouteMetadata))
		for k, v := range r.RouteMetadata {
			fields[utf8Safe(k)] = structpb.NewStringValue(utf8Safe(v))
		}
		md := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
			RouteMetadataNamespace: {Fields: fields},
		}}
		attrs.MetadataContext = md
		attrs.RouteMetadataContext = md
	}
	return &authv3.CheckRequest{Attributes: attrs}
}

// headerMap is attributes.request.http.headers: lower-case names, the pseudo-headers Envoy's
// header map has, repeated values joined by "," (cookies by "; ", as HTTP/2 joins them), and
// invalid UTF-8 replaced by '!'.
func headerMap(r *Request) map[string]string {
	m := make(map[string]string, len(r.Headers)+5)
	for k, vs := range r.Headers {
		if len(vs) == 0 {
			continue
		}
		k = utf8Safe(strings.ToLower(k))
		sep := ","
		if k == "cookie" {
			sep = "; "
		}
		v := strings.Join(vs, sep)
		if old, ok := m[k]; ok { // two spellings of one name
			v = old + sep + v
		}
		m[k] = utf8Safe(v)
	}
	m[":authority"] = utf8Safe(r.Host)
	m[":method"] = utf8Safe(r.Method)
	m[":path"] = utf8Safe(r.Path)
	if r.Scheme != "" {
		m[":scheme"] = utf8Safe(r.Scheme)
	}
	// Only the gateway says whether the body is whole; a client's claim is dropped.
	delete(m, partialBodyHeader)
	if r.Body != nil {
		m[partialBodyHeader] = fmt.Sprint(r.BodyPartial)
	}
	return m
}

// protocolString spells a protocol as Envoy does ("HTTP/2", not Go's "HTTP/2.0").
func protocolString(p string) string {
	switch p {
	case "HTTP/2.0":
		return "HTTP/2"
	case "HTTP/3.0":
		return "HTTP/3"
	}
	return utf8Safe(p)
}

func (c *GRPCClient) contextExtensions(req map[string]string) map[string]string {
	if len(req) == 0 {
		return c.ctxExt // shared, read-only
	}
	m := make(map[string]string, len(c.ctxExt)+len(req))
	for k, v := range c.ctxExt {
		m[k] = v
	}
	for k, v := range req {
		m[utf8Safe(k)] = utf8Safe(v)
	}
	return m
}

// peer is an attributes.source or destination: the socket address, or nil when unknown.
func peer(ap netip.AddrPort) *authv3.AttributeContext_Peer {
	if !ap.IsValid() {
		return nil
	}
	return &authv3.AttributeContext_Peer{Address: &corev3.Address{
		Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address:       ap.Addr().Unmap().String(),
			PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(ap.Port())},
		}},
	}}
}

// decide maps a CheckResponse as Envoy does: status OK allows (with ok_response's mutations),
// error_response is a failure, anything else denies (with denied_response's reply, 403 by
// default).
func (c *GRPCClient) decide(resp *authv3.CheckResponse) (*Decision, error) {
	code := codes.Code(resp.GetStatus().GetCode())
	if code == codes.OK {
		return c.allowed(resp.GetOkResponse()), nil
	}
	if er := resp.GetErrorResponse(); er != nil {
		reply := c.denied(er)
		if er.GetStatus().GetCode() == 0 {
			reply.Status = 0
		}
		return nil, &Error{
			Outcome: OutcomeServiceError,
			Reply:   reply,
			Err:     fmt.Errorf("service reported an error (status %s)", code),
		}
	}
	return c.denied(resp.GetDeniedResponse()), nil
}

func (c *GRPCClient) allowed(ok *authv3.OkHttpResponse) *Decision {
	d := &Decision{Allowed: true}
	if ok == nil {
		return d
	}
	up := mutationCheck{allow: c.policy.upstream, refused: &d.Refused}
	d.Upstream = mutations(ok.GetHeaders(), up)
	for _, name := range ok.GetHeadersToRemove() {
		if n, ok := up.name(name, nil); ok {
			d.UpstreamRemove = append(d.UpstreamRemove, n)
		}
	}
	// Query parameter changes would change :path, which a service may never do.
	if len(ok.GetQueryParametersToSet()) > 0 || len(ok.GetQueryParametersToRemove()) > 0 {
		up.refuse(":path")
	}
	d.Response = mutations(ok.GetResponseHeadersToAdd(), mutationCheck{allow: c.policy.client, refused: &d.Refused})
	return d
}

func (c *GRPCClient) denied(dr *authv3.DeniedHttpResponse) *Decision {
	d := &Decision{Status: deniedStatus(int(dr.GetStatus().GetCode())), HeadersToClient: http.Header{}}
	ms := mutations(dr.GetHeaders(), mutationCheck{allow: c.policy.client, refused: &d.Refused})
	ApplyMutations(d.HeadersToClient, ms)
	if b := dr.GetBody(); b != "" {
		if len(b) > c.policy.maxBody {
			b, d.BodyTruncated = b[:c.policy.maxBody], true
		}
		d.Body = []byte(b)
	}
	return d
}

// mutations converts HeaderValueOptions, keeping those check accepts. The deprecated append
// flag wins when set (true appends, false overwrites); otherwise append_action decides, with
// Envoy's default of appending. An unknown action is refused.
func mutations(opts []*corev3.HeaderValueOption, check mutationCheck) []HeaderMutation {
	var out []HeaderMutation
	for _, o := range opts {
		h := o.GetHeader()
		value := h.GetValue()
		if raw := h.GetRawValue(); len(raw) > 0 {
			value = string(raw)
		}
		var action Action
		if ap := o.GetAppend(); ap != nil {
			action = OverwriteOrAdd
			if ap.GetValue() {
				action = AppendOrAdd
			}
		} else {
			switch o.GetAppendAction() {
			case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
				action = AppendOrAdd
			case corev3.HeaderValueOption_ADD_IF_ABSENT:
				action = AddIfAbsent
			case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
				action = OverwriteOrAdd
			case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
				action = OverwriteIfExists
			default:
				check.refuse(h.GetKey())
				continue
			}
		}
		name, ok := check.name(h.GetKey(), &value)
		if !ok {
			continue
		}
		out = append(out, HeaderMutation{Name: name, Value: value, Action: action})
	}
	return out
}

// grpcError classifies a failed Check call.
func grpcError(ctx context.Context, err error) *Error {
	if o, ok := ctxOutcome(ctx); ok {
		return &Error{Outcome: o, Err: err}
	}
	o := OutcomeServiceError
	switch status.Code(err) {
	case codes.DeadlineExceeded:
		o = OutcomeTimeout
	case codes.Canceled:
		o = OutcomeCanceled
	case codes.Unavailable:
		o = OutcomeUnavailable
	case codes.Unimplemented, codes.Internal, codes.DataLoss:
		// Not an Authorization service, or a reply that does not decode.
		o = OutcomeProtocolError
	}
	return &Error{Outcome: o, Err: err}
}
