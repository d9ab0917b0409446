package proxy

import (
	"bytes"
	"crypto/tls"
	"net"
	"testing"
	"time"
)

// FuzzReadClientHello feeds arbitrary bytes as the start of a TLS connection: reading the
// ClientHello must not panic or hang, and what it reports consumed is a prefix of the input.
func FuzzReadClientHello(f *testing.F) {
	// A real ClientHello with a server name, captured from crypto/tls.
	client, server := net.Pipe()
	go func() {
		tls.Client(client, &tls.Config{ServerName: "api.example.com", InsecureSkipVerify: true}).Handshake()
	}()
	server.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4096)
	n, _ := server.Read(buf)
	client.Close()
	server.Close()
	f.Add(buf[:n])
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := net.Pipe()
		go func() {
			b.Write(data)
			b.Close()
		}()
		a.SetDeadline(time.Now().Add(2 * time.Second))
		name, consumed, err := readClientHello(a)
		a.Close()
		if err == nil && !bytes.HasPrefix(data, consumed) {
			t.Fatalf("consumed %d bytes that are not a prefix of the input (name %q)", len(consumed), name)
		}
	})
}
