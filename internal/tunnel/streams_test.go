package tunnel

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/tunnel/tunneltest"
)

func TestStreamHeader(t *testing.T) {
	for _, to := range []netip.AddrPort{
		netip.MustParseAddrPort("[fd00:1:2:3::4]:443"),
		netip.MustParseAddrPort("[::]:0"),
		netip.MustParseAddrPort("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
	} {
		b := appendStreamHeader(nil, to)
		got, err := parseStreamHeader(bufio.NewReader(bytes.NewReader(b)))
		if err != nil || got != to {
			t.Errorf("%s: got %s, %v", to, got, err)
		}
		for n := range len(b) {
			if _, err := parseStreamHeader(bufio.NewReader(bytes.NewReader(b[:n]))); err == nil {
				t.Errorf("%s: %d of %d bytes parsed", to, n, len(b))
			}
		}
	}
	if _, err := parseStreamHeader(bufio.NewReader(bytes.NewReader([]byte{0x01, 0, 0}))); err == nil {
		t.Error("another signal parsed")
	}
}

// FuzzStreamHeader: a stream's first bytes, whatever they are, are either refused or give
// the address that written again gives the same bytes.
func FuzzStreamHeader(f *testing.F) {
	f.Add(appendStreamHeader(nil, netip.MustParseAddrPort("[fd00::1]:80")))
	f.Add([]byte{0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		to, err := parseStreamHeader(r)
		if err != nil {
			return
		}
		if again := appendStreamHeader(nil, to); !bytes.HasPrefix(b, again) {
			t.Fatalf("%x parsed as %s, written %x", b, to, again)
		}
	})
}

// Connections as streams: half-close both ways (the agent's side reads EOF and still
// answers), refusal by a draining agent and by a closed port are ECONNREFUSED, and a
// revoked session ends its open streams at once.
func TestStreams(t *testing.T) {
	s, addr, clientTLS := endpoint(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { // answers what it read, after the client's half-close
				defer c.Close()
				b, _ := io.ReadAll(c)
				c.Write(append([]byte("got "), b...))
			}()
		}
	}()
	a, err := Connect(t.Context(), AgentOptions{Endpoint: addr, Token: "good", TLS: clientTLS, Streams: true,
		Forward: func(_ netip.Prefix, to netip.AddrPort) string {
			if to.Port() == 9 {
				return "127.0.0.1:9" // discard: nothing listens
			}
			return l.Addr().String()
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	tunneltest.WaitFor(t, func() bool { return len(s.Agents("p1")) == 1 })
	to := netip.AddrPortFrom(AgentAddr(a.Prefix), 80)

	c, err := s.DialContext(t.Context(), "p1", "tcp", to.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*streamConn); !ok {
		t.Fatalf("dialed a %T, want a stream", c)
	}
	if c.RemoteAddr().String() != net.TCPAddrFromAddrPort(to).String() {
		t.Errorf("remote address %s", c.RemoteAddr())
	}
	io.WriteString(c, "hello")
	c.(interface{ CloseWrite() error }).CloseWrite()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(c); string(b) != "got hello" || err != nil {
		t.Errorf("half-closed stream: %q %v", b, err)
	}
	c.Close()
	if in := a.sess.Stats().BytesIn.Load(); in < 5 {
		t.Errorf("agent counted %d bytes in", in)
	}

	_, err = s.DialContext(t.Context(), "p1", "tcp", netip.AddrPortFrom(to.Addr(), 9).String())
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial to a closed port: %v, want ECONNREFUSED", err)
	}
	if ok, refused := s.streams[0].Load(), s.streams[1].Load(); ok != 1 || refused != 1 {
		t.Errorf("apoxy_tunnel_streams_total: ok %d, refused %d; want 1 and 1", ok, refused)
	}

	open, err := s.DialContext(t.Context(), "p1", "tcp", to.String())
	if err != nil {
		t.Fatal(err)
	}
	s.Revoke("p1", nil)
	read := make(chan error, 1)
	go func() { _, err := open.Read(make([]byte, 1)); read <- err }()
	select {
	case err := <-read:
		if err == nil {
			t.Error("read on a revoked session's stream: no error")
		}
	case <-time.After(3 * time.Second):
		t.Error("a revoked session's stream stays open")
	}
}

// A draining agent's refusal is ECONNREFUSED, which dialNode passes to the node's next agent.
func TestStreamRefused(t *testing.T) {
	s, addr, clientTLS := endpoint(t)
	a, err := Connect(t.Context(), AgentOptions{Endpoint: addr, Token: "good", TLS: clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.ServeStreams(func(netip.AddrPort) (net.Conn, error) { return nil, ErrRefused }, nil, nil)
	tunneltest.WaitFor(t, func() bool { return len(s.Agents("p1")) == 1 })
	// This agent did not ask for streams: the gateway dials through the overlay. Dial a
	// stream the way the gateway does, on the agent's connection.
	var qc = s.Agents("p1")[0].qc
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = dialStream(ctx, qc, netip.AddrPort{}, netip.AddrPortFrom(AgentAddr(a.Prefix), 80))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("refused: %v", err)
	}
	_, err = dialStream(ctx, qc, netip.AddrPort{}, netip.MustParseAddrPort("[fd00::1]:80"))
	if err == nil || errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("a target outside the agent's prefix: %v", err)
	}
}

// RelayUDP keeps a flow while either direction sends, and ends it once both are idle.
func TestRelayUDP(t *testing.T) {
	pair := func() (net.Conn, net.Conn) {
		l, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.DialUDP("udp", nil, l.LocalAddr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("hi"))
		buf := make([]byte, 8)
		_, from, err := l.ReadFromUDP(buf)
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		s, err := net.DialUDP("udp", l.LocalAddr().(*net.UDPAddr), from)
		if err != nil {
			t.Fatal(err)
		}
		return c, s
	}
	outer, a := pair()
	b, inner := pair()
	defer outer.Close()
	defer inner.Close()
	done := make(chan struct{})
	go func() { RelayUDP(a, b, 300*time.Millisecond); close(done) }()
	buf := make([]byte, 64)
	// Only outer -> inner for a while: longer than idle, and the flow stays.
	for i := range 8 {
		outer.Write([]byte{byte(i)})
		inner.SetReadDeadline(time.Now().Add(time.Second))
		if n, err := inner.Read(buf); err != nil || n != 1 || buf[0] != byte(i) {
			t.Fatalf("datagram %d: %v", i, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case <-done:
		t.Fatal("the relay ended while one direction was sending")
	default:
	}
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("an idle relay did not end")
	}
}
