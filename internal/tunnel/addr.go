// Package tunnel connects sites to the gateway without open ports: an agent (`apoxy tunnel
// run`) dials the gateway's tunnel endpoint over QUIC, opens an HTTP/3 CONNECT-IP session
// (RFC 9484) with its node's token, and gets an IPv6 ULA /96 the gateway routes into through
// the project's user-space stack (internal/tunnel/netstack).
//
// Address plan: each project has a /48 (fd00::/8 with 40 bits of a hash of the project's
// name); node n (its index, from 1) has the /64 <project>:<n>::/64; an agent has a /96 in its
// node's /64, picked from a hash of its name (the same name gets the same /96 back). The
// gateway is <project>::1. An IPv4 service behind an agent is reached at the agent's /96 with
// the IPv4 address in the low 32 bits.
package tunnel

import (
	"crypto/sha256"
	"encoding/binary"
	"hash/fnv"
	"net/netip"
)

// ProjectPrefix is a project's /48 of the overlay.
func ProjectPrefix(project string) netip.Prefix {
	h := sha256.Sum256([]byte("apoxy-tunnel/" + project))
	var a [16]byte
	a[0] = 0xfd
	copy(a[1:6], h[:5])
	return netip.PrefixFrom(netip.AddrFrom16(a), 48)
}

// GatewayAddr is the gateway's own address in a project's overlay.
func GatewayAddr(project string) netip.Addr {
	a := ProjectPrefix(project).Addr().As16()
	a[15] = 1
	return netip.AddrFrom16(a)
}

// NodePrefix is the /64 of node number n (n ≥ 1; 0 is the gateway's).
func NodePrefix(project string, n uint16) netip.Prefix {
	a := ProjectPrefix(project).Addr().As16()
	binary.BigEndian.PutUint16(a[6:8], n)
	return netip.PrefixFrom(netip.AddrFrom16(a), 64)
}

// AgentPrefix is the /96 of an agent's slot in its node's /64.
func AgentPrefix(node netip.Prefix, slot uint32) netip.Prefix {
	a := node.Masked().Addr().As16()
	binary.BigEndian.PutUint32(a[8:12], slot)
	return netip.PrefixFrom(netip.AddrFrom16(a), 96)
}

// agentSlot is where an agent's name hashes to (never 0, which would put the agent's first
// address next to the node prefix's own).
func agentSlot(name string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return max(h.Sum32(), 1)
}

// AgentAddr is an agent's own address: the first of its /96.
func AgentAddr(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }

// Map4 is the overlay address of IPv4 address v4 behind the agent whose /96 is p.
func Map4(p netip.Prefix, v4 netip.Addr) netip.Addr {
	a := p.Masked().Addr().As16()
	copy(a[12:], v4.AsSlice())
	return netip.AddrFrom16(a)
}

// NodeAddr is a node's own address, the one its tunnel-domain name resolves to: the first of
// slot 0 of its /64, which no agent holds. The endpoint sends a connection made to slot 0 to
// one of the node's connected agents (the same low 32 bits in that agent's /96), so a Backend
// at a node's name fails over between its agents, and survives an agent's reconnect, without
// re-resolving.
func NodeAddr(node netip.Prefix) netip.Addr { return AgentAddr(AgentPrefix(node, 0)) }

// NodeMap4 is the node-level address of IPv4 address v4 behind any agent of a node.
func NodeMap4(node netip.Prefix, v4 netip.Addr) netip.Addr { return Map4(AgentPrefix(node, 0), v4) }

// nodeSlot splits an overlay address of a project into its node index and agent slot.
func nodeSlot(project string, a netip.Addr) (index uint16, slot uint32, ok bool) {
	if !a.Is6() || !ProjectPrefix(project).Contains(a) {
		return 0, 0, false
	}
	b := a.As16()
	return binary.BigEndian.Uint16(b[6:8]), binary.BigEndian.Uint32(b[8:12]), true
}

// inSlot is a with its agent slot replaced by slot's (the same node, the same low 32 bits).
func inSlot(a netip.Addr, slot uint32) netip.Addr {
	b := a.As16()
	binary.BigEndian.PutUint32(b[8:12], slot)
	return netip.AddrFrom16(b)
}

// agentSlotOf is the slot of an agent's /96.
func agentSlotOf(p netip.Prefix) uint32 {
	b := p.Addr().As16()
	return binary.BigEndian.Uint32(b[8:12])
}

// nodeSlotOf is the node index and slot of an agent's /96.
func nodeSlotOf(p netip.Prefix) (uint16, uint32) {
	b := p.Addr().As16()
	return binary.BigEndian.Uint16(b[6:8]), binary.BigEndian.Uint32(b[8:12])
}

// Egress4Prefix is a project's NAT64 prefix (RFC 6146 style, sent to agents in the
// CONNECT-IP PREF64 capsule): an agent whose node has egress reaches IPv4 address v4 at
// Map4(Egress4Prefix, v4), and the gateway connects to v4 for it. It is in the gateway's
// own /64 (node 0).
func Egress4Prefix(project string) netip.Prefix {
	return AgentPrefix(NodePrefix(project, 0), 0x64)
}
