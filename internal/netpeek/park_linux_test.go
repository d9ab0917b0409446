package netpeek

import (
	"errors"
	"net"
	"testing"
	"time"
)

// pair is a connected loopback TCP pair.
func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func parkAndWait(t *testing.T, p *Parker, server net.Conn, act func(Parked)) error {
	t.Helper()
	got := make(chan error, 2)
	e := p.Park(server, resumeFunc(func(err error) { got <- err }))
	if !e.Valid() {
		t.Fatal("Park could not park a TCP connection")
	}
	select {
	case err := <-got:
		t.Fatalf("callback ran before anything happened: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	act(e)
	select {
	case err := <-got:
		select {
		case err2 := <-got:
			t.Fatalf("callback ran twice: %v, %v", err, err2)
		case <-time.After(50 * time.Millisecond):
		}
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("callback never ran")
	}
	return nil
}

func TestParkResumesOnData(t *testing.T) {
	p := &Parker{}
	client, server := pair(t)
	err := parkAndWait(t, p, server, func(Parked) { client.Write([]byte("GET")) })
	if err != nil {
		t.Fatalf("resumed with %v, want nil", err)
	}
	// The bytes are still there for the resumed reader.
	buf := make([]byte, 3)
	if _, err := server.Read(buf); err != nil || string(buf) != "GET" {
		t.Fatalf("read after resume: %q, %v", buf, err)
	}
	if n := p.Len(); n != 0 {
		t.Fatalf("Len after resume = %d, want 0", n)
	}
}

func TestParkResumesOnHangup(t *testing.T) {
	p := &Parker{}
	client, server := pair(t)
	if err := parkAndWait(t, p, server, func(Parked) { client.Close() }); err != nil {
		t.Fatalf("resumed with %v, want nil", err)
	}
}

func TestParkDataAlreadyWaiting(t *testing.T) {
	p := &Parker{}
	client, server := pair(t)
	client.Write([]byte("x"))
	time.Sleep(20 * time.Millisecond)
	got := make(chan error, 1)
	if e := p.Park(server, resumeFunc(func(err error) { got <- err })); !e.Valid() {
		t.Fatal("Park could not park a TCP connection")
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("bytes that arrived before Park never woke it")
	}
}

func TestParkCancel(t *testing.T) {
	p := &Parker{}
	_, server := pair(t)
	var cancelled bool
	err := parkAndWait(t, p, server, func(e Parked) { cancelled = e.Cancel() })
	if !cancelled || !errors.Is(err, ErrCancelled) {
		t.Fatalf("Cancel = %v, callback error %v; want true, ErrCancelled", cancelled, err)
	}
	// A second Cancel finds nothing to do.
	if p.Len() != 0 {
		t.Fatalf("Len = %d after Cancel", p.Len())
	}
}

func TestParkNotASocket(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if (&Parker{}).Park(a, resumeFunc(func(error) {})).Valid() {
		t.Fatal("a net.Pipe was parked")
	}
}

// BenchmarkParkResume is one idle period of a parked connection: park, data arrives, the
// callback runs.
func BenchmarkParkResume(b *testing.B) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	client, _ := net.Dial("tcp", ln.Addr().String())
	server, _ := ln.Accept()
	defer client.Close()
	defer server.Close()
	p := &Parker{}
	done := make(chan error)
	buf := make([]byte, 1)
	for b.Loop() {
		p.Park(server, resumeFunc(func(err error) { done <- err }))
		client.Write(buf)
		<-done
		server.Read(buf)
	}
}

// BenchmarkWaitResume is BenchmarkParkResume's idle period with a goroutine waiting instead.
func BenchmarkWaitResume(b *testing.B) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	client, _ := net.Dial("tcp", ln.Addr().String())
	server, _ := ln.Accept()
	defer client.Close()
	defer server.Close()
	done := make(chan error)
	buf := make([]byte, 1)
	for b.Loop() {
		go func() { done <- Wait(server) }()
		client.Write(buf)
		<-done
		server.Read(buf)
	}
}

// resumeFunc makes a func a Resumer.
type resumeFunc func(error)

func (f resumeFunc) Resume(err error) { f(err) }
