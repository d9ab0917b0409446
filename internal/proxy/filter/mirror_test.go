package filter

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/proxy/upstream"
)

// seen is what a mirror backend received.
type seen struct{ host, path, body string }

// mirrorBackend starts a real backend and a cluster for it; requests it gets arrive on the
// channel.
func mirrorBackend(t *testing.T) (Upstreams, int32, chan seen) {
	t.Helper()
	got := make(chan seen, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Host, r.URL.Path, string(b)}
	}))
	t.Cleanup(srv.Close)
	m := upstream.NewManager(upstream.Options{})
	t.Cleanup(m.Close)
	port := int32(srv.Listener.Addr().(*net.TCPAddr).Port)
	clusters := m.Sync([]*ir.Backend{{Name: "shadow", Protocol: "plain", Endpoints: []ir.Endpoint{{IP: "127.0.0.1"}}}}, nil)
	deadline := time.Now().Add(5 * time.Second)
	for _, err := clusters["shadow"].Pick(nil); err != nil; _, err = clusters["shadow"].Pick(nil) {
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return clusterMap(clusters), port, got
}

type clusterMap map[string]*upstream.Cluster

func (m clusterMap) Cluster(name string) *upstream.Cluster { return m[name] }

func receive(t *testing.T, got chan seen) seen {
	t.Helper()
	select {
	case s := <-got:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("the mirror backend got nothing")
		return seen{}
	}
}

func TestMirrorSendsACopyWithTheBody(t *testing.T) {
	ups, port, got := mirrorBackend(t)
	rt := prefixRoute("/", ir.Filter{Type: ir.FilterRequestMirror, Mirror: &ir.Mirror{Backend: "shadow", Port: port, Percent: 100}})
	c, _ := Compile(rt, nil)
	r := httptest.NewRequest("POST", "http://a.example.com/orders", strings.NewReader("payload"))
	x, _ := exchange(r, rt)
	x.Upstreams = ups
	if c.Run(x) {
		t.Fatal("mirror answered")
	}
	// The request still carries its body for the real backend.
	if b, _ := io.ReadAll(x.Req.Body); string(b) != "payload" {
		t.Errorf("body left for the backend: %q", b)
	}
	if s := receive(t, got); s.path != "/orders" || s.body != "payload" || s.host != "a.example.com" {
		t.Errorf("mirror got %+v", s)
	}
}

func TestMirrorPercentZeroSendsNothing(t *testing.T) {
	ups, port, got := mirrorBackend(t)
	rt := prefixRoute("/", ir.Filter{Type: ir.FilterRequestMirror, Mirror: &ir.Mirror{Backend: "shadow", Port: port, Percent: 0}})
	c, _ := Compile(rt, nil)
	for range 20 {
		x, _ := exchange(httptest.NewRequest("GET", "/", nil), rt)
		x.Upstreams = ups
		c.Run(x)
	}
	select {
	case s := <-got:
		t.Errorf("mirrored at 0%%: %+v", s)
	case <-time.After(200 * time.Millisecond):
	}
}
