package echo

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"

	"sigs.k8s.io/gateway-api/conformance/echo-basic/tcpserver"
)

// serveTCP speaks the suite's TCP echo protocol (echo-basic with TCP_ECHO_SERVER set) on ln: a
// welcome line, then PING -> PONG, IS_TLS -> false, TEST -> the pod's identity as JSON.
func (s *Server) serveTCP(ln net.Listener, port string) {
	payload, _ := json.Marshal(&tcpserver.TCPAssertions{Context: tcpserver.Context{
		Namespace: s.id.Namespace, Ingress: s.id.Ingress, Service: s.id.Service, Pod: s.id.Pod, TCPPort: port,
	}})
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			fmt.Fprint(c, tcpserver.WelcomeMessage)
			sc := bufio.NewScanner(c)
			for sc.Scan() {
				switch sc.Text() {
				case "TEST":
					fmt.Fprintf(c, "%s\n", payload)
				case "IS_TLS":
					fmt.Fprint(c, "false\n")
				case "PING":
					fmt.Fprint(c, "PONG\n")
				}
			}
		}()
	}
}
