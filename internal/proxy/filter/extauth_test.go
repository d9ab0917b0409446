package filter

import (
	"context"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/auth/extauthz"
	"apoxy.dev/apoxy/internal/ir"
)

type checkFunc func(context.Context, *extauthz.Request) (*extauthz.Decision, error)

func (f checkFunc) Check(ctx context.Context, r *extauthz.Request) (*extauthz.Decision, error) {
	return f(ctx, r)
}

// Design §5 case 92: without includeBody the stage never reads the request body, so a
// streaming body is not stalled waiting for the check; the service is told nothing of it.
func TestExtAuthLeavesStreamingBodies(t *testing.T) {
	pr, pw := io.Pipe()
	var sent *extauthz.Request
	s := &extAuth{e: &ir.ExtAuth{}, timeout: time.Second, client: checkFunc(func(_ context.Context, r *extauthz.Request) (*extauthz.Decision, error) {
		sent = r
		return &extauthz.Decision{Allowed: true}, nil
	})}
	rt := prefixRoute("/")
	x, _ := exchange(httptest.NewRequest("POST", "/upload", pr), rt)
	done := make(chan bool)
	go func() { done <- s.Serve(x) }()
	select {
	case answered := <-done:
		if answered {
			t.Fatal("an allowed request was answered")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stage waited for a body the client has not sent")
	}
	if sent.Body != nil {
		t.Errorf("the service got a body: %q", sent.Body)
	}
	go func() { pw.Write([]byte("streamed")); pw.Close() }()
	if b, _ := io.ReadAll(x.Req.Body); string(b) != "streamed" {
		t.Errorf("upstream body %q", b)
	}
}
