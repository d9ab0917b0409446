package tunnel

import (
	"net/netip"
	"testing"

	"github.com/quic-go/quic-go/quicvarint"
)

func ipv6Packet(src netip.Addr) []byte {
	p := make([]byte, 40)
	p[0] = 6 << 4
	s := src.As16()
	copy(p[8:24], s[:])
	return p
}

// A datagram's packet is taken only with context ID 0, as IPv6, from the agent's own prefix.
func TestAgentPacket(t *testing.T) {
	prefix := AgentPrefix(NodePrefix("p1", 1), 7)
	mine := ipv6Packet(AgentAddr(prefix))
	other := ipv6Packet(AgentAddr(AgentPrefix(NodePrefix("p1", 1), 8)))
	dg := func(quarter, ctxID uint64, pkt []byte) []byte {
		return append(quicvarint.Append(quicvarint.Append(nil, quarter), ctxID), pkt...)
	}
	if pkt, ok := agentPacket(dg(0, 0, mine), prefix); !ok || len(pkt) != 40 {
		t.Errorf("the agent's own packet: %v", ok)
	}
	if _, ok := agentPacket(dg(1000, 0, mine), prefix); !ok {
		t.Error("a larger quarter stream ID")
	}
	for name, b := range map[string][]byte{
		"another agent's source": dg(0, 0, other),
		"context ID 1":           dg(0, 1, mine),
		"IPv4":                   dg(0, 0, append([]byte{0x45}, make([]byte, 39)...)),
		"short":                  dg(0, 0, mine[:20]),
		"empty":                  nil,
	} {
		if _, ok := agentPacket(b, prefix); ok {
			t.Errorf("%s accepted", name)
		}
	}
}

func FuzzAgentPacket(f *testing.F) {
	prefix := AgentPrefix(NodePrefix("p1", 1), 7)
	f.Add(append([]byte{0, 0}, ipv6Packet(AgentAddr(prefix))...))
	f.Add([]byte{0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		pkt, ok := agentPacket(b, prefix)
		if ok && (len(pkt) < 40 || !prefix.Contains(netip.AddrFrom16([16]byte(pkt[8:24])))) {
			t.Fatalf("accepted %x", b)
		}
	})
}

// On the agent's side a packet is taken only when it is addressed to the agent's prefix.
func TestGatewayPacket(t *testing.T) {
	prefix := AgentPrefix(NodePrefix("p1", 1), 7)
	pkt := ipv6Packet(GatewayAddr("p1"))
	to := AgentAddr(prefix).As16()
	copy(pkt[24:40], to[:])
	if _, ok := gatewayPacket(append([]byte{0, 0}, pkt...), prefix); !ok {
		t.Error("a packet to the agent was refused")
	}
	other := AgentAddr(AgentPrefix(NodePrefix("p1", 1), 8)).As16()
	copy(pkt[24:40], other[:])
	if _, ok := gatewayPacket(append([]byte{0, 0}, pkt...), prefix); ok {
		t.Error("a packet to another agent was taken")
	}
}
