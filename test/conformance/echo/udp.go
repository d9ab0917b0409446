package echo

import (
	"encoding/json"
	"net"

	"github.com/miekg/dns"
	"sigs.k8s.io/gateway-api/conformance/echo-basic/udpechoserver"
)

// ListenUDPEcho answers every datagram on addr with the suite's UDP echo envelope (echo-basic
// with UDP_ECHO_SERVER set): the request and the pod's identity as JSON.
func (s *Server) ListenUDPEcho(addr string) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	s.trackPacket(pc)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			out, _ := json.Marshal(udpechoserver.EchoResponse{Request: string(buf[:n]), Context: udpechoserver.Context{
				Namespace: s.id.Namespace, Ingress: s.id.Ingress, Service: s.id.Service, Pod: s.id.Pod,
			}})
			pc.WriteTo(out, from)
		}
	}()
	return nil
}

// ListenDNS stands in for the suite's CoreDNS pods on addr: every query is answered
// authoritatively, an A query with the pod's address (what CoreDNS's whoami reports).
func (s *Server) ListenDNS(addr string) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	s.trackPacket(pc)
	ip := net.ParseIP(hostOf(addr))
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		for _, q := range r.Question {
			if q.Qtype == dns.TypeA && ip != nil {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0}, A: ip})
			}
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	return nil
}

func hostOf(addr string) string {
	h, _, _ := net.SplitHostPort(addr)
	return h
}

func (s *Server) trackPacket(pc net.PacketConn) {
	s.mu.Lock()
	s.packets = append(s.packets, pc)
	s.mu.Unlock()
}
