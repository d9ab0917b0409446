package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"
)

// sniRoute is a TLS listener's route for one server-name pattern.
type sniRoute struct {
	hostname  string
	route     *l4Route
	terminate bool // complete the handshake here and send the decrypted stream on
}

// errHelloRead stops the handshake once the ClientHello is parsed.
var errHelloRead = errors.New("client hello read")

// readClientHello reads a TLS ClientHello from c with crypto/tls's own parser and returns its
// server name and every byte consumed (to replay to the backend). Nothing is written to c.
func readClientHello(c net.Conn) (string, []byte, error) {
	var rec bytes.Buffer
	var name string
	var seen bool
	conn := &helloConn{r: io.TeeReader(c, &rec)}
	err := tls.Server(conn, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		name, seen = h.ServerName, true
		return nil, errHelloRead
	}}).Handshake()
	if !seen {
		return "", nil, err
	}
	return name, rec.Bytes(), nil
}

// helloConn is a read-only connection for parsing a ClientHello: writes are refused.
type helloConn struct {
	r io.Reader
}

func (c *helloConn) Read(p []byte) (int, error)         { return c.r.Read(p) }
func (c *helloConn) Write(p []byte) (int, error)        { return 0, io.ErrClosedPipe }
func (c *helloConn) Close() error                       { return nil }
func (c *helloConn) LocalAddr() net.Addr                { return nil }
func (c *helloConn) RemoteAddr() net.Addr               { return nil }
func (c *helloConn) SetDeadline(t time.Time) error      { return nil }
func (c *helloConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *helloConn) SetWriteDeadline(t time.Time) error { return nil }

// replayConn reads bytes already consumed (a ClientHello) before the rest of the connection.
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite half-closes the underlying TCP connection.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
