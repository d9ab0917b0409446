package netstack

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// pipe is one end of an in-memory packet link: what one end writes the other reads. It
// stands in for a CONNECT-IP conn, whose own tests live in connect-ip-go; the stacks on both
// sides are real.
type pipe struct {
	in, out chan []byte
	closed  chan struct{}
	once    *sync.Once
}

func pipePair() (*pipe, *pipe) {
	a, b := make(chan []byte, 1024), make(chan []byte, 1024)
	closed, once := make(chan struct{}), &sync.Once{}
	return &pipe{in: a, out: b, closed: closed, once: once}, &pipe{in: b, out: a, closed: closed, once: once}
}

func (p *pipe) ReadPacket(b []byte) (int, error) {
	select {
	case pkt := <-p.in:
		return copy(b, pkt), nil
	case <-p.closed:
		return 0, net.ErrClosed
	}
}

func (p *pipe) WritePacket(b []byte) ([]byte, error) {
	select {
	case p.out <- append([]byte(nil), b...):
		return nil, nil
	case <-p.closed:
		return nil, net.ErrClosed
	}
}

func (p *pipe) Close() { p.once.Do(func() { close(p.closed) }) }

var (
	gatewayAddr = netip.MustParsePrefix("fd61:706f:7879::1/128")
	agentPrefix = netip.MustParsePrefix("fd61:706f:7879:0:0:1::/96")
	overlay     = netip.MustParsePrefix("fd61:706f:7879::/48")
)

// tunnel joins a gateway stack and an agent stack that forwards every connection to
// 127.0.0.1 on the same port.
func tunnel(t *testing.T) (gw, agent *Stack, link *pipe, sess *Session) {
	t.Helper()
	gw, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)
	if err := gw.AddLocal(gatewayAddr); err != nil {
		t.Fatal(err)
	}
	agent, err = New(Options{Owner: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(agent.Close)
	a, b := pipePair()
	t.Cleanup(a.Close)
	sess, err = gw.Attach(a, nil, []netip.Prefix{agentPrefix})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := agent.Attach(b, []netip.Prefix{netip.PrefixFrom(agentPrefix.Addr().Next(), 96)}, []netip.Prefix{overlay}); err != nil {
		t.Fatal(err)
	}
	agent.ForwardTCP(func(c net.Conn, to netip.AddrPort) {
		defer c.Close()
		local, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(to.Port())))
		if err != nil {
			return
		}
		defer local.Close()
		go io.Copy(local, c)
		io.Copy(c, local)
	})
	return gw, agent, a, sess
}

// The gateway's stack dials any address of the agent's prefix; the agent's stack forwards it
// to the local service: HTTP works through, on kept-alive and on new connections alike (no
// connection hangs on a TIME_WAIT 4-tuple), and a closed session fails dials at once.
func TestDialThroughTunnel(t *testing.T) {
	gw, _, link, sess := tunnel(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from "+r.Host)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	target := "[" + agentPrefix.Addr().Next().String() + "]:" + port
	for _, keepAlive := range []bool{true, false} {
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: gw.DialContext, DisableKeepAlives: !keepAlive}}
		for i := range 200 {
			resp, err := client.Get("http://" + target + "/")
			if err != nil {
				t.Fatalf("keep-alive %v, request %d: %v", keepAlive, i, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.HasPrefix(string(body), "hello from ") {
				t.Fatalf("body %q", body)
			}
		}
	}
	// Another address of the /96 reaches the agent too (it owns the prefix).
	other := "[" + agentPrefix.Addr().Next().Next().Next().String() + "]:" + port
	if c, err := gw.DialContext(context.Background(), "tcp", other); err != nil {
		t.Errorf("dial %s: %v", other, err)
	} else {
		c.Close()
	}
	if in, out := gw.Stats().PacketsIn.Load(), gw.Stats().PacketsOut.Load(); in == 0 || out == 0 {
		t.Errorf("stats in %d out %d", in, out)
	}

	link.Close()
	<-sess.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	began := time.Now()
	if c, err := gw.DialContext(ctx, "tcp", target); err == nil {
		c.Close()
		t.Fatal("dialed through a closed session")
	}
	if d := time.Since(began); d > time.Second {
		t.Errorf("a dial with no route took %s", d)
	}
}

// A bulk transfer through the tunnel arrives whole.
func TestBulkThroughTunnel(t *testing.T) {
	gw, _, _, _ := tunnel(t)
	const size = 8 << 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 32<<10)
		for sent := 0; sent < size; sent += len(buf) {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	c, err := gw.DialContext(context.Background(), "tcp", "["+agentPrefix.Addr().Next().String()+"]:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if err != nil || n != size {
		t.Fatalf("received %d of %d: %v", n, size, err)
	}
}

// Whatever arrives from a session (a hostile agent's packets) never crashes the stack, and
// the tunnel keeps working after it.
func FuzzInbound(f *testing.F) {
	f.Add([]byte{0x60, 0, 0, 0, 0, 8, 17, 64})
	f.Add([]byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2})
	f.Add([]byte{})
	gw, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer gw.Close()
	a, b := pipePair()
	defer a.Close()
	if _, err := gw.Attach(a, []netip.Prefix{gatewayAddr}, []netip.Prefix{agentPrefix}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if _, err := b.WritePacket(pkt); err != nil {
			t.Fatal(err)
		}
	})
}
