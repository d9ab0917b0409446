package authority

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Limits of the TCP side.
const (
	tcpIdleTimeout  = 10 * time.Second // RFC 7766 §6.2.3 suggests seconds
	tcpWriteTimeout = 10 * time.Second
	tcpMaxConns     = 1024
)

// serveUDP answers datagrams on pc with one reader per core, each with its own buffers, until
// pc is closed.
func (s *Server) serveUDP(pc net.PacketConn) {
	uc, _ := pc.(*net.UDPConn)
	if uc != nil {
		growBuffers(uc)
	}
	var wg sync.WaitGroup
	for range max(runtime.GOMAXPROCS(0), 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := make([]byte, 65535)
			out := make([]byte, 0, 4096)
			for {
				var n int
				var from netip.AddrPort
				var addr net.Addr
				var err error
				if uc != nil {
					n, from, err = uc.ReadFromUDPAddrPort(in)
				} else {
					n, addr, err = pc.ReadFrom(in)
					if ua, ok := addr.(*net.UDPAddr); ok {
						from = ua.AddrPort()
					}
				}
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					continue
				}
				resp := s.Handle(in[:n], from.Addr(), UDP, out[:0])
				if resp == nil {
					continue
				}
				out = resp // keeps a grown buffer
				if s.rrl != nil {
					v, report := s.rrl.allow(from.Addr())
					if report {
						s.log.Warn("dns: rate limiting responses to a source prefix (spoofed queries aimed at a victim, or a busy resolver)",
							"prefix", prefix(from.Addr()).String(), "responses_per_second", s.opts.RateLimit)
					}
					switch v {
					case drop:
						s.metrics.limited[drop].Add(1)
						continue
					case slip:
						s.metrics.limited[slip].Add(1)
						if resp = slipped(resp, questionEnd(resp)); resp == nil {
							continue
						}
					}
				}
				if uc != nil {
					uc.WriteToUDPAddrPort(resp, from)
				} else {
					pc.WriteTo(resp, addr)
				}
			}
		}()
	}
	wg.Wait()
}

// questionEnd is the offset past a message's first question, or 12 when it has none or its
// name cannot be walked.
func questionEnd(b []byte) int {
	if len(b) < 12 || binary.BigEndian.Uint16(b[4:]) == 0 {
		return 12
	}
	off := 12
	for off < len(b) {
		l := int(b[off])
		if l == 0 {
			return off + 1
		}
		if l > 63 {
			return 12
		}
		off += 1 + l
	}
	return 12
}

// serveTCP accepts connections on ln until it is closed.
func (s *Server) serveTCP(ln net.Listener) {
	sem := make(chan struct{}, tcpMaxConns)
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			c.Close() // too many: the client retries
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
				<-sem
				s.wg.Done()
			}()
			s.serveConn(c)
		}()
	}
}

// serveConn answers the queries of one TCP connection in turn (RFC 7766: several per
// connection), until the client closes it or is idle too long.
func (s *Server) serveConn(c net.Conn) {
	var src netip.Addr
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		src = ta.AddrPort().Addr()
	}
	var lenBuf [2]byte
	in := make([]byte, 0, 512)
	out := make([]byte, 0, 4096)
	for {
		c.SetReadDeadline(time.Now().Add(tcpIdleTimeout))
		if _, err := io.ReadFull(c, lenBuf[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(lenBuf[:]))
		if cap(in) < n {
			in = make([]byte, n)
		}
		in = in[:n]
		if _, err := io.ReadFull(c, in); err != nil {
			return
		}
		if isTransfer(in) {
			if !s.transfer(c, in, src) {
				return
			}
			continue
		}
		resp := s.Handle(in, src, TCP, out[:0])
		if resp == nil {
			return // garbage: drop the connection
		}
		out = resp
		if err := writeTCP(c, resp); err != nil {
			return
		}
	}
}

// writeTCP writes one length-prefixed message.
func writeTCP(c net.Conn, msg []byte) error {
	c.SetWriteDeadline(time.Now().Add(tcpWriteTimeout))
	buf := make([]byte, 2+len(msg))
	binary.BigEndian.PutUint16(buf, uint16(len(msg)))
	copy(buf[2:], msg)
	_, err := c.Write(buf)
	return err
}

// isTransfer reports whether a message is a query for AXFR or IXFR.
func isTransfer(b []byte) bool {
	if len(b) < 12 || b[2]&0xF8 != 0 || binary.BigEndian.Uint16(b[4:]) != 1 {
		return false
	}
	end := questionEnd(b)
	if end == 12 || end+2 > len(b) {
		return false
	}
	t := binary.BigEndian.Uint16(b[end:])
	return t == dns.TypeAXFR || t == dns.TypeIXFR
}
