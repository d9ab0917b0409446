package extauthz

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"golang.org/x/net/http/httpguts"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
)

// checkDecisionInvariants fails unless d/err keep the promises whatever the service sent:
// nothing protected, invalid or outside the lists is ever changed, bodies are bounded, and a
// denial's status can be sent.
func checkDecisionInvariants(t *testing.T, d *Decision, err error, p replyPolicy) {
	t.Helper()
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error %T is not an *Error", err)
		}
		if d != nil {
			t.Fatal("both a decision and an error")
		}
		if e.Reply == nil {
			return
		}
		d = e.Reply
		if d.Status != 0 && (d.Status < 200 || d.Status > 599) {
			t.Fatalf("reply status %d", d.Status)
		}
	} else if !d.Allowed && (d.Status < 200 || d.Status > 599) {
		t.Fatalf("denial status %d", d.Status)
	}
	if len(d.Body) > p.maxBody {
		t.Fatalf("body of %d bytes, limit %d", len(d.Body), p.maxBody)
	}
	if len(d.Refused) > maxRefused {
		t.Fatalf("%d refusals recorded", len(d.Refused))
	}
	checkName := func(kind, name string, f HeaderFilter) {
		if !httpguts.ValidHeaderFieldName(name) || Protected(name) || !f.Allows(name) || name != http.CanonicalHeaderKey(name) {
			t.Fatalf("%s header %q accepted", kind, name)
		}
	}
	for _, m := range d.Upstream {
		checkName("upstream", m.Name, p.upstream)
		if !httpguts.ValidHeaderFieldValue(m.Value) {
			t.Fatalf("upstream value %q accepted", m.Value)
		}
	}
	for _, n := range d.UpstreamRemove {
		checkName("removed", n, p.upstream)
	}
	for _, m := range d.Response {
		checkName("response", m.Name, p.client)
	}
	for k, vs := range d.HeadersToClient {
		checkName("client", k, p.client)
		if strings.EqualFold(k, headersToRemoveHeader) {
			t.Fatalf("%s relayed", k)
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				t.Fatalf("client value %q accepted", v)
			}
		}
	}
	if d.Allowed && (d.Status != 0 || d.HeadersToClient != nil || d.Body != nil) {
		t.Fatalf("allow with a denial's fields: %+v", d)
	}
	if !d.Allowed && (d.Upstream != nil || d.UpstreamRemove != nil || d.Response != nil) {
		t.Fatalf("denial with upstream changes: %+v", d)
	}
	up := http.Header{}
	d.ApplyUpstream(up)
	for k := range up {
		if Protected(k) {
			t.Fatalf("upstream %s changed", k)
		}
	}
}

// FuzzHTTPDecision maps arbitrary HTTP answers (status, header lines, body).
func FuzzHTTPDecision(f *testing.F) {
	f.Add(200, "X-User-Id: alice\nHost: evil\nX-Envoy-Auth-Headers-To-Remove: authorization, :path, host", []byte(""), true)
	f.Add(302, "Location: /login\nSet-Cookie: a=1\nConnection: close\nContent-Length: 3", []byte("abc"), false)
	f.Add(401, "WWW-Authenticate: Basic\nx-debug: \x00bad\ntransfer-encoding: chunked", []byte("no"), true)
	f.Add(503, "Retry-After: 1", []byte("down"), false)
	f.Add(42, ":status: 200\nbad name: v\nX-User-Id: a\r\nX-Admin: 1", []byte{0xff}, false)
	var clients [2]*HTTPClient
	for i := range clients {
		cfg := HTTPConfig{URL: "http://authz.test", MaxResponseBody: 16}
		if i == 1 {
			cfg.HeadersToUpstream = []string{"x-user-id", "host", "connection", "Authorization", ":path"}
			cfg.HeadersToClient = []string{"set-cookie", "content-length"}
		}
		clients[i] = newHTTP(f, cfg)
	}
	f.Fuzz(func(t *testing.T, status int, rawHeaders string, body []byte, lists bool) {
		c := clients[0]
		if lists {
			c = clients[1]
		}
		h := http.Header{}
		for _, line := range strings.Split(rawHeaders, "\n") {
			k, v, _ := strings.Cut(line, ":")
			if len(k) > 0 && k[0] == ' ' {
				k = http.CanonicalHeaderKey(k[1:])
			}
			h[k] = append(h[k], strings.TrimPrefix(v, " "))
		}
		d, err := c.decide(status, h, body)
		checkDecisionInvariants(t, d, err, c.policy)
		switch {
		case status == 200:
			if err != nil || !d.Allowed {
				t.Fatalf("200: %+v, %v", d, err)
			}
		case status >= 500 && status <= 599:
			if OutcomeOf(d, err) != OutcomeServiceError {
				t.Fatalf("%d: %+v, %v", status, d, err)
			}
		default:
			if err != nil || d.Allowed {
				t.Fatalf("%d: %+v, %v", status, d, err)
			}
		}
	})
}

// FuzzGRPCDecision maps arbitrary CheckResponse messages.
func FuzzGRPCDecision(f *testing.F) {
	seeds := []*authv3.CheckResponse{
		{HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers: []*corev3.HeaderValueOption{
				hvo("x-user-id", "a", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
				hvo(":path", "/x", 0), hvoAppend("host", "h", true),
				{Header: &corev3.HeaderValue{Key: "x-raw", RawValue: []byte("r\n")}},
			},
			HeadersToRemove:      []string{"authorization", "connection"},
			ResponseHeadersToAdd: []*corev3.HeaderValueOption{hvo("set-cookie", "s=1", 0)},
		}}},
		{Status: &rpcstatus.Status{Code: 7}, HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode_Found},
			Headers: []*corev3.HeaderValueOption{hvo("location", "/login", 0), hvo("content-length", "1", 0)},
			Body:    strings.Repeat("b", 40),
		}}},
		{Status: &rpcstatus.Status{Code: 13}, HttpResponse: &authv3.CheckResponse_ErrorResponse{ErrorResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: 1000}, Body: "err",
		}}},
	}
	for _, s := range seeds {
		b, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	var clients [2]*GRPCClient
	for i := range clients {
		cfg := GRPCConfig{Target: "authz.test:9191", MaxResponseBody: 16}
		if i == 1 {
			cfg.HeadersToUpstream = []string{"x-user-id", "host", "connection", "Authorization"}
			cfg.HeadersToClient = []string{"set-cookie", "content-length"}
		}
		clients[i] = newGRPC(f, cfg)
	}
	f.Fuzz(func(t *testing.T, msg []byte, lists bool) {
		var resp authv3.CheckResponse
		if proto.Unmarshal(msg, &resp) != nil {
			return
		}
		c := clients[0]
		if lists {
			c = clients[1]
		}
		d, err := c.decide(&resp)
		checkDecisionInvariants(t, d, err, c.policy)
		if resp.GetStatus().GetCode() == 0 && (err != nil || !d.Allowed) {
			t.Fatalf("status OK: %+v, %v", d, err)
		}
	})
}
