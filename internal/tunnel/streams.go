package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/quicvarint"
)

// The stream path: TCP connections from the gateway to an agent carried as QUIC streams.
//
// Through the overlay a TCP connection is two user-space TCP stacks talking IP over QUIC
// datagrams: two congestion controllers nested, every segment and every ACK a datagram
// through a dozen goroutine hand-offs, loss whenever a queue overflows. An agent that sends
// StreamsHeader takes them as QUIC streams its gateway opens on the session's connection
// instead: the stream's first bytes say where to (an address of the agent's /96 and a port),
// the agent connects there and answers one status byte, then the stream is the connection
// (a FIN is a half-close, a reset an abort). QUIC does the reliability, flow and congestion
// control once. HTTP/3 has no server-initiated bidirectional streams, so this is an
// extension both sides opt into; everything else (UDP, ICMP, the agent's own connections,
// agents that do not send the header) keeps the overlay.

// StreamsHeader, sent by an agent with the value "1", says it takes connections as QUIC
// streams the gateway opens (streams.go).
const StreamsHeader = "Apoxy-Agent-Streams"

// streamSignal starts a stream the gateway opens (a value no HTTP/3 frame type has).
const streamSignal = 0x2a70

// maxStreams is how many connections the gateway may have open through one agent session
// (more wait for one to end).
const maxStreams = 4096

// streamHeaderLen is the header after the signal: an IPv6 address and a port.
const streamHeaderLen = 18

// Stream error codes an agent resets a stream with when it does not take the connection.
const (
	// StreamRefused: the agent is draining (the gateway tries the node's other agents).
	StreamRefused quic.StreamErrorCode = 0x1
	// StreamUnreachable: nothing answers at the target.
	StreamUnreachable quic.StreamErrorCode = 0x2
	// StreamBadHeader: the header is malformed or the target not the agent's.
	StreamBadHeader quic.StreamErrorCode = 0x3
)

// ErrRefused is what an agent's dial function returns to refuse a connection (draining):
// the gateway then dials the node's other agents.
var ErrRefused = errors.New("tunnel: connection refused by the agent (draining)")

// appendStreamHeader writes the header of a stream to to.
func appendStreamHeader(b []byte, to netip.AddrPort) []byte {
	b = quicvarint.Append(b, streamSignal)
	a := to.Addr().As16()
	b = append(b, a[:]...)
	return append(b, byte(to.Port()>>8), byte(to.Port()))
}

// parseStreamHeader reads a stream's header: where the connection goes.
func parseStreamHeader(r io.ByteReader) (netip.AddrPort, error) {
	sig, err := quicvarint.Read(r)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if sig != streamSignal {
		return netip.AddrPort{}, fmt.Errorf("tunnel: stream: signal %#x, want %#x", sig, streamSignal)
	}
	var h [streamHeaderLen]byte
	for i := range h {
		if h[i], err = r.ReadByte(); err != nil {
			return netip.AddrPort{}, err
		}
	}
	return netip.AddrPortFrom(netip.AddrFrom16([16]byte(h[:16])), uint16(h[16])<<8|uint16(h[17])), nil
}

// streamConn is a stream as a net.Conn: Close ends both directions, CloseWrite only ours.
type streamConn struct {
	*quic.Stream
	local, remote net.Addr
	// in and out count payload bytes (may be nil).
	in, out *atomic.Uint64
	once    sync.Once
	onClose func()
}

func (c *streamConn) Read(b []byte) (int, error) {
	n, err := c.Stream.Read(b)
	if c.in != nil {
		c.in.Add(uint64(n))
	}
	return n, err
}

func (c *streamConn) Write(b []byte) (int, error) {
	n, err := c.Stream.Write(b)
	if c.out != nil {
		c.out.Add(uint64(n))
	}
	return n, err
}

func (c *streamConn) LocalAddr() net.Addr  { return c.local }
func (c *streamConn) RemoteAddr() net.Addr { return c.remote }

// CloseWrite sends our FIN: the peer reads EOF, and may still write.
func (c *streamConn) CloseWrite() error { return c.Stream.Close() }

// Close ends the connection: what was written is still sent, then FIN; reading stops (the
// peer's further writes fail, as after a TCP close).
func (c *streamConn) Close() error {
	c.Stream.CancelRead(0)
	err := c.Stream.Close()
	c.once.Do(func() {
		if c.onClose != nil {
			c.onClose()
		}
	})
	return err
}

// dialStream opens a connection to to through agent a's QUIC connection, and waits for the
// agent to say it is connected.
func dialStream(ctx context.Context, qc *quic.Conn, from, to netip.AddrPort) (net.Conn, error) {
	str, err := qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() {
		str.CancelWrite(0)
		str.CancelRead(0)
	})
	if _, err := str.Write(appendStreamHeader(make([]byte, 0, 32), to)); err != nil {
		stop()
		return nil, streamDialErr(ctx, err)
	}
	var status [1]byte
	_, err = io.ReadFull(str, status[:])
	if !stop() {
		return nil, ctx.Err()
	}
	if err != nil {
		str.CancelWrite(0)
		return nil, streamDialErr(ctx, err)
	}
	return &streamConn{Stream: str, local: net.TCPAddrFromAddrPort(from), remote: net.TCPAddrFromAddrPort(to)}, nil
}

// streamDialErr says why an agent did not take a stream, as a dial error: refused (a
// draining agent, nothing listening) is ECONNREFUSED, like a TCP reset.
func streamDialErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var se *quic.StreamError
	if errors.As(err, &se) && se.Remote {
		switch se.ErrorCode {
		case StreamRefused, StreamUnreachable:
			return fmt.Errorf("%w (stream code %d)", syscall.ECONNREFUSED, se.ErrorCode)
		case StreamBadHeader:
			return fmt.Errorf("tunnel: the agent refused the stream's header")
		}
	}
	return err
}

// streamHeaderTimeout bounds how long an agent waits for a stream's header.
const streamHeaderTimeout = 10 * time.Second

// ServeStreams takes the connections the gateway opens as QUIC streams (the session was
// dialed with AgentOptions.Streams), until the session's connection ends. dial connects a
// connection made to to (an address of the session's prefix) on this side; ErrRefused or
// another error resets the stream so the gateway's dial fails (a refused one is tried
// through the node's other agents). On success the two are spliced; in and out, if set,
// count the bytes from and to the gateway.
func (s *Session) ServeStreams(dial func(to netip.AddrPort) (net.Conn, error), in, out *atomic.Uint64) {
	go func() {
		for {
			str, err := s.quic.AcceptStream(context.Background())
			if err != nil {
				return
			}
			go s.serveStream(str, dial, in, out)
		}
	}()
}

func (s *Session) serveStream(str *quic.Stream, dial func(to netip.AddrPort) (net.Conn, error), in, out *atomic.Uint64) {
	reset := func(code quic.StreamErrorCode) {
		str.CancelRead(code)
		str.CancelWrite(code)
	}
	str.SetReadDeadline(time.Now().Add(streamHeaderTimeout))
	to, err := parseStreamHeader(byteReader{str})
	if err != nil || !s.Prefix.Contains(to.Addr()) {
		reset(StreamBadHeader)
		return
	}
	str.SetReadDeadline(time.Time{})
	local, err := dial(to)
	if err != nil {
		code := StreamUnreachable
		if errors.Is(err, ErrRefused) {
			code = StreamRefused
		}
		reset(code)
		return
	}
	defer local.Close()
	if _, err := str.Write([]byte{0}); err != nil {
		reset(0)
		return
	}
	c := &streamConn{Stream: str, local: net.TCPAddrFromAddrPort(to), remote: net.TCPAddrFromAddrPort(netip.AddrPortFrom(s.gatewayAddr(), 0)), in: in, out: out}
	defer c.Close()
	Splice(c, local)
}

// gatewayAddr is the gateway's overlay address (its DNS server's), or :: before it said.
func (s *Session) gatewayAddr() netip.Addr {
	for _, d := range s.DNS {
		for _, ns := range d.Nameservers {
			for _, a := range ns.IPv6Addresses {
				return a
			}
		}
	}
	return netip.IPv6Unspecified()
}

// byteReader reads a stream a byte at a time (only for its short header: quic.Stream
// buffers what arrived).
type byteReader struct{ io.Reader }

func (r byteReader) ReadByte() (byte, error) {
	var b [1]byte
	_, err := io.ReadFull(r.Reader, b[:])
	return b[0], err
}
