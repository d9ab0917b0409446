// Package wire holds the HTTP/1.1 message-syntax pieces the gateway's server (package h1) and
// its upstream client share: chunked framing, Content-Length and token lists. Both sides are
// strict where lenience lets two hops read one message differently (request smuggling).
package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/textproto"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// ErrChunk reports malformed chunked framing.
var ErrChunk = errors.New("malformed chunked encoding")

// ChunkedReader decodes a chunked body from a buffered reader, stopping after the trailer
// section (whose fields go to OnTrailer, when set).
type ChunkedReader struct {
	R         *bufio.Reader
	OnTrailer func(name, value string)
	remaining int64
	eof       bool
}

// Reset starts a new body on r.
func (c *ChunkedReader) Reset(r *bufio.Reader) { *c = ChunkedReader{R: r, OnTrailer: c.OnTrailer} }

// Read returns body bytes; io.EOF after the last chunk and trailer.
func (c *ChunkedReader) Read(p []byte) (int, error) {
	if c.eof {
		return 0, io.EOF
	}
	if c.remaining == 0 {
		size, err := c.chunkSize()
		if err != nil {
			return 0, err
		}
		if size == 0 {
			if err := c.trailer(); err != nil {
				return 0, err
			}
			c.eof = true
			return 0, io.EOF
		}
		c.remaining = size
	}
	if int64(len(p)) > c.remaining {
		p = p[:c.remaining]
	}
	n, err := c.R.Read(p)
	c.remaining -= int64(n)
	if err == io.EOF {
		return n, io.ErrUnexpectedEOF
	}
	if err != nil {
		return n, err
	}
	if c.remaining == 0 {
		line, err := c.line()
		if err != nil {
			return n, err
		}
		if len(line) != 0 {
			return n, ErrChunk
		}
	}
	return n, nil
}

// EOF reports whether the body was read to its end.
func (c *ChunkedReader) EOF() bool { return c.eof }

// chunkSize reads a chunk-size line: hex digits, optional extensions (ignored), CRLF.
func (c *ChunkedReader) chunkSize() (int64, error) {
	line, err := c.line()
	if err != nil {
		return 0, err
	}
	var size int64
	i := 0
	for ; i < len(line); i++ {
		d := unhex(line[i])
		if d < 0 {
			break
		}
		if i >= 15 {
			return 0, ErrChunk
		}
		size = size<<4 | int64(d)
	}
	if i == 0 {
		return 0, ErrChunk
	}
	rest := bytes.TrimLeft(line[i:], " \t")
	if len(rest) > 0 && rest[0] != ';' {
		return 0, ErrChunk
	}
	for _, b := range rest {
		if b < ' ' && b != '\t' || b == 0x7f {
			return 0, ErrChunk
		}
	}
	return size, nil
}

// trailer reads the trailer section up to its empty line.
func (c *ChunkedReader) trailer() error {
	total := 0
	for {
		line, err := c.line()
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
		if total += len(line); total > 64<<10 {
			return ErrChunk
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !httpguts.ValidHeaderFieldName(string(name)) || !httpguts.ValidHeaderFieldValue(string(value)) {
			return ErrChunk
		}
		if c.OnTrailer != nil {
			c.OnTrailer(textproto.CanonicalMIMEHeaderKey(string(name)), strings.Trim(string(value), " \t"))
		}
	}
}

// line reads one CRLF-terminated line without its CRLF; a bare LF or CR is refused, since
// other hops may frame it differently.
func (c *ChunkedReader) line() ([]byte, error) {
	line, err := c.R.ReadSlice('\n')
	if err == io.EOF {
		return nil, io.ErrUnexpectedEOF
	}
	if err == bufio.ErrBufferFull {
		return nil, ErrChunk
	}
	if err != nil {
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, ErrChunk
	}
	line = line[:len(line)-2]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, ErrChunk
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

// ParseContentLength accepts only digits (no sign, no spaces), as RFC 9110 §8.6 defines it.
func ParseContentLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// HasToken reports whether a comma-separated header value lists token (case-insensitively).
func HasToken(v, token string) bool {
	for f := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(textproto.TrimString(f), token) {
			return true
		}
	}
	return false
}
