package echo

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"

	"sigs.k8s.io/gateway-api/conformance/echo-basic/tcpserver"
)

// serveTCP speaks the suite's TCP echo protocol (echo-basic with TCP_ECHO_SERVER set) on ln
// (TLS when isTLS): a welcome line, then PING -> PONG, IS_TLS -> whether the connection is TLS,
// TEST -> the pod's identity (and the TLS connection's parameters) as JSON.
func (s *Server) serveTCP(ln net.Listener, port string, isTLS bool) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			a := &tcpserver.TCPAssertions{IsTLS: isTLS, Context: tcpserver.Context{
				Namespace: s.id.Namespace, Ingress: s.id.Ingress, Service: s.id.Service, Pod: s.id.Pod, TCPPort: port,
			}}
			if tc, ok := c.(*tls.Conn); ok {
				if err := tc.Handshake(); err != nil {
					return
				}
				st := tc.ConnectionState()
				a.TLSPort = port
				a.TLSAssertion = &tcpserver.TLSAssertions{Version: tls.VersionName(st.Version), ServerName: st.ServerName,
					NegotiatedProtocol: st.NegotiatedProtocol, CipherSuite: tls.CipherSuiteName(st.CipherSuite), Curves: st.CurveID.String()}
			}
			payload, _ := json.Marshal(a)
			fmt.Fprint(c, tcpserver.WelcomeMessage)
			sc := bufio.NewScanner(c)
			for sc.Scan() {
				switch sc.Text() {
				case "TEST":
					fmt.Fprintf(c, "%s\n", payload)
				case "IS_TLS":
					fmt.Fprintf(c, "%t\n", isTLS)
				case "PING":
					fmt.Fprint(c, "PONG\n")
				}
			}
		}()
	}
}
