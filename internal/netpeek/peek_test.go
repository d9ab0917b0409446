package netpeek

import (
	"net"
	"testing"
	"time"
)

func TestPeekAndWait(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	if st := Peek(server); st != Empty {
		t.Fatalf("fresh connection: %v, want Empty", st)
	}
	waited := make(chan time.Duration, 1)
	start := time.Now()
	go func() { Wait(server); waited <- time.Since(start) }()
	time.Sleep(100 * time.Millisecond)
	client.Write([]byte("x"))
	if d := <-waited; d < 100*time.Millisecond {
		t.Fatalf("Wait returned after %v, before any byte was sent", d)
	}
	if st := Peek(server); st != Data {
		t.Fatalf("after a write: %v, want Data", st)
	}
	buf := make([]byte, 1)
	if n, _ := server.Read(buf); n != 1 || buf[0] != 'x' {
		t.Fatal("Peek or Wait consumed the byte")
	}
	client.Close()
	time.Sleep(50 * time.Millisecond)
	if st := Peek(server); st != Closed {
		t.Fatalf("after the peer closed: %v, want Closed", st)
	}
}
