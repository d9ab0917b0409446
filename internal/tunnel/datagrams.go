package tunnel

import (
	"context"
	"net/http"
	"net/netip"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/quic-go/quicvarint"

	"apoxy.dev/apoxy/internal/tunnel/netstack"
)

// The agent-to-gateway packet path, read straight from QUIC.
//
// quic-go's HTTP/3 layer hands each request stream's datagrams over through a queue of 32
// (a constant), filled by one dispatcher goroutine; when the session's reader is not scheduled
// in time the rest are dropped: 0.5–0.7 % of an agent's packets under a bulk download, which
// bounds TCP through the tunnel (docs/tunnels.md). Our agents do not announce HTTP/3 datagrams
// in their SETTINGS (they send them all the same, RFC 9297 lets a peer receive what it
// announced), so the gateway's HTTP/3 layer starts no dispatcher for their connections and the
// endpoint reads their datagrams itself: from QUIC's own queue (128), on one goroutine per
// connection that hands each packet to the stack. An agent that announces datagrams (another
// CONNECT-IP client) keeps the library's path.

// directQueue is how many datagrams wait between the reader and the stack (about 1.3 MB of
// 1280-byte packets, at most, per agent session).
const directQueue = 1024

// quicConnKey keys the QUIC connection in a request's context (http3.Server.ConnContext).
type quicConnKey struct{}

// receiveDirect reads an agent's datagrams from its QUIC connection when the agent did not
// announce HTTP/3 datagrams, until the session ends.
func (s *Server) receiveDirect(w http.ResponseWriter, r *http.Request, sess *netstack.Session, prefix netip.Prefix) {
	qc, ok := r.Context().Value(quicConnKey{}).(*quic.Conn)
	if !ok {
		return
	}
	if st, ok := w.(http3.Settingser); ok {
		select {
		case <-st.ReceivedSettings():
			if st.Settings().EnableDatagrams {
				return // the library reads them
			}
		case <-sess.Done():
			return
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-sess.Done()
		cancel()
	}()
	// The reader only moves datagrams from QUIC's queue (128) into a deep one: the stack's
	// work happens on another goroutine, so a burst finds the reader free.
	q := make(chan []byte, directQueue)
	go func() {
		for b := range q {
			if pkt, ok := agentPacket(b, prefix); ok {
				sess.Deliver(pkt)
			} else {
				sess.Stats().Dropped.Add(1)
			}
		}
	}()
	go func() {
		defer close(q)
		for {
			b, err := qc.ReceiveDatagram(ctx)
			if err != nil {
				return
			}
			select {
			case q <- b:
			default:
				sess.Stats().Dropped.Add(1)
			}
		}
	}()
}

// agentPacket takes the IP packet out of an HTTP datagram of a CONNECT-IP session and checks
// what the library would: an IPv6 packet whose source is in the agent's prefix (no agent may
// speak for another's addresses).
func agentPacket(b []byte, prefix netip.Prefix) ([]byte, bool) {
	pkt, ok := datagramPacket(b)
	return pkt, ok && prefix.Contains(netip.AddrFrom16([16]byte(pkt[8:24])))
}

// gatewayPacket is agentPacket on the agent's side: an IPv6 packet to the agent's prefix.
func gatewayPacket(b []byte, prefix netip.Prefix) ([]byte, bool) {
	pkt, ok := datagramPacket(b)
	return pkt, ok && prefix.Contains(netip.AddrFrom16([16]byte(pkt[24:40])))
}

// datagramPacket takes the IPv6 packet out of an HTTP datagram of a CONNECT-IP session:
// quarter stream ID, context ID 0, the packet.
func datagramPacket(b []byte) ([]byte, bool) {
	_, n, err := quicvarint.Parse(b)
	if err != nil {
		return nil, false
	}
	ctxID, m, err := quicvarint.Parse(b[n:])
	if err != nil || ctxID != 0 {
		return nil, false
	}
	pkt := b[n+m:]
	return pkt, len(pkt) >= 40 && pkt[0]>>4 == 6
}

// ReceiveDirect reads the session's datagrams from its QUIC connection beside HTTP/3's own
// reader, handing each packet for the agent's prefix to deliver, until the session ends. The
// agent cannot stop its HTTP/3 layer from reading them (the gateway must announce datagrams:
// connect-ip-go checks), but a reader of ours that always waits takes most of them before they
// reach the 32-entry queue; the rest still arrive through the session's ReadPacket. deliver
// owns the packet.
func (s *Session) ReceiveDirect(done <-chan struct{}, deliver func([]byte), dropped func()) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-done
		cancel()
	}()
	q := make(chan []byte, directQueue)
	go func() {
		for b := range q {
			if pkt, ok := gatewayPacket(b, s.Prefix); ok {
				deliver(pkt)
			} else {
				dropped()
			}
		}
	}()
	go func() {
		defer close(q)
		for {
			b, err := s.quic.ReceiveDatagram(ctx)
			if err != nil {
				return
			}
			select {
			case q <- b:
			default:
				dropped()
			}
		}
	}()
}
