package h1

import (
	"bufio"
	"bytes"
	"errors"
	"golang.org/x/net/http/httpguts"
	"io"
	"net/http"
	"sync"
)

// body is a request body read straight from the connection: Content-Length bytes, or chunked
// with the trailer read and dropped. One is made per request that has a body, so a reader that
// outlives its request (a transport's writer goroutine) cannot read the next request's bytes:
// it gets http.ErrBodyReadAfterClose once the request is over.
type body struct {
	mu             sync.Mutex
	c              *conn
	remaining      int64 // Content-Length bytes left, or bytes left in the current chunk
	chunked        bool
	expectContinue bool
	sawEOF         bool
	closed         bool
	err            error
}

var errChunk = errors.New("h1: malformed chunked request body")

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
	if b.expectContinue {
		b.expectContinue = false
		if !b.c.resp.committed {
			b.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			if err := b.c.bw.Flush(); err != nil {
				b.err = err
				return 0, err
			}
		}
	}
	n, err := b.read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func (b *body) read(p []byte) (int, error) {
	br := b.c.br
	if b.chunked && b.remaining == 0 {
		size, err := b.chunkSize()
		if err != nil {
			return 0, err
		}
		if size == 0 {
			if err := b.readTrailer(); err != nil {
				return 0, err
			}
			b.sawEOF = true
			return 0, io.EOF
		}
		b.remaining = size
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := br.Read(p)
	b.remaining -= int64(n)
	if err == io.EOF {
		return n, io.ErrUnexpectedEOF
	}
	if err != nil {
		return n, err
	}
	if b.remaining == 0 {
		if b.chunked {
			if err := b.chunkEnd(); err != nil {
				return n, err
			}
		} else {
			b.sawEOF = true
			return n, io.EOF
		}
	}
	return n, nil
}

// chunkSize reads a chunk-size line: hex digits, optional extensions, CRLF.
func (b *body) chunkSize() (int64, error) {
	line, err := b.line()
	if err != nil {
		return 0, err
	}
	var size int64
	digits := 0
	i := 0
	for ; i < len(line); i++ {
		d := unhex(line[i])
		if d < 0 {
			break
		}
		if digits++; digits > 15 {
			return 0, errChunk
		}
		size = size<<4 | int64(d)
	}
	if digits == 0 {
		return 0, errChunk
	}
	// The rest may only be chunk extensions (";name=value"), which are ignored; whitespace
	// before them is tolerated as many servers do.
	rest := line[i:]
	for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		rest = rest[1:]
	}
	if len(rest) > 0 && rest[0] != ';' {
		return 0, errChunk
	}
	for _, c := range rest {
		if c < ' ' && c != '\t' || c == 0x7f {
			return 0, errChunk
		}
	}
	return size, nil
}

// chunkEnd reads the CRLF after a chunk's data.
func (b *body) chunkEnd() error {
	line, err := b.line()
	if err != nil {
		return err
	}
	if len(line) != 0 {
		return errChunk
	}
	return nil
}

// readTrailer reads the trailer section up to the empty line; request trailers are not
// forwarded.
func (b *body) readTrailer() error {
	total := 0
	for {
		line, err := b.line()
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
		if total += len(line); total > 64<<10 {
			return errChunk
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !httpguts.ValidHeaderFieldName(string(name)) || !httpguts.ValidHeaderFieldValue(string(value)) {
			return errChunk
		}
	}
}

// line reads one CRLF-terminated line without its CRLF (bare LF and CR are refused).
func (b *body) line() ([]byte, error) {
	line, err := b.c.br.ReadSlice('\n')
	if err == io.EOF {
		return nil, io.ErrUnexpectedEOF
	}
	if err != nil {
		if err == io.ErrShortBuffer || errors.Is(err, bufio.ErrBufferFull) {
			return nil, errChunk
		}
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, errChunk // a bare LF: framing other hops may read differently
	}
	line = line[:len(line)-2]
	for _, c := range line {
		if c == '\r' {
			return nil, errChunk
		}
	}
	return line, nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// awaitingContinue reports whether the client still waits for "100 Continue".
func (b *body) awaitingContinue() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
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
	if b.err != nil || b.expectContinue {
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
