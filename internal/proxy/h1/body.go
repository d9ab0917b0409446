package h1

import (
	"io"
	"net/http"
	"sync"

	"apoxy.dev/apoxy/internal/proxy/wire"
)

// body is a request body read straight from the connection: Content-Length bytes, or chunked
// with the trailer read and dropped. One is made per request that has a body, so a reader that
// outlives its request (a transport's writer goroutine) cannot read the next request's bytes:
// it gets http.ErrBodyReadAfterClose once the request is over.
type body struct {
	mu        sync.Mutex
	c         *conn
	remaining int64 // Content-Length bytes left
	chunked   bool
	cr        wire.ChunkedReader // request trailers are read and dropped
	sawEOF    bool
	closed    bool
	err       error

	// cont guards the "100 Continue" decision apart from mu, which a reader holds while it
	// waits for the client: a handler that answers while another goroutine reads the body
	// (full duplex) must not wait for that read to write its head.
	cont           sync.Mutex
	expectContinue bool // the client waits for "100 Continue" before it sends the body
	headSent       bool // the final response head is on its way: no "100 Continue" after it
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.sawEOF {
		return 0, io.EOF
	}
	if err := b.sendContinue(); err != nil {
		b.err = err
		return 0, err
	}
	n, err := b.read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// read reads body bytes from the connection. While it runs, c.bodyReads is odd: the sweeper
// sees a read that waits for the client too long, and wakes it with a read deadline; the error
// that brings is ErrBodyReadTimeout (and reported once, since it sticks in b.err or ends the
// drain).
func (b *body) read(p []byte) (int, error) {
	c := b.c
	c.bodyReads.Add(1)
	n, err := b.readFramed(p)
	c.bodyReads.Add(1)
	if err != nil && err != io.EOF && c.expired.Load() == expiredBody {
		err = ErrBodyReadTimeout
		c.srv.reject(c.remoteAddr, http.StatusRequestTimeout, RejectBodyTimeout)
	}
	return n, err
}

// expiredBody is conn.expired's value once the sweeper cut a stalled body read.
const expiredBody = 1

func (b *body) readFramed(p []byte) (int, error) {
	if b.chunked {
		n, err := b.cr.Read(p)
		if err == io.EOF {
			b.sawEOF = true
		}
		return n, err
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.c.br.Read(p)
	b.remaining -= int64(n)
	if err == io.EOF {
		return n, io.ErrUnexpectedEOF
	}
	if err != nil {
		return n, err
	}
	if b.remaining == 0 {
		b.sawEOF = true
		return n, io.EOF
	}
	return n, nil
}

// sendContinue tells a client that waits for "100 Continue" to send its body, at the first
// read, unless the final response head went first.
func (b *body) sendContinue() error {
	b.cont.Lock()
	defer b.cont.Unlock()
	if !b.expectContinue {
		return nil
	}
	b.expectContinue = false
	if b.headSent {
		return nil
	}
	b.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	return b.c.bw.Flush()
}

// commitHead is called before the final response head is written: from then on no "100
// Continue" is sent. It reports whether the client still waits for one (then it never sends
// its body, and the connection cannot carry another request). It does not wait for a read in
// progress.
func (b *body) commitHead() (awaitingContinue bool) {
	b.cont.Lock()
	defer b.cont.Unlock()
	b.headSent = true
	return b.expectContinue
}

// awaitingContinue reports whether the client still waits for "100 Continue".
func (b *body) awaitingContinue() bool {
	b.cont.Lock()
	defer b.cont.Unlock()
	return b.expectContinue
}

func (b *body) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// drain reads what the handler left of the body so the connection can carry the next request.
// It gives up (the connection is then closed) past 256 KiB, on a malformed body, or when the
// client still waits for "100 Continue" (its body was never sent).
func (b *body) drain() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.sawEOF {
		return true
	}
	if b.err != nil || b.awaitingContinue() {
		return false
	}
	var buf [4096]byte
	read := 0
	for read < 256<<10 {
		n, err := b.read(buf[:])
		read += n
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
	return false
}
