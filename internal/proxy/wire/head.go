package wire

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// ErrHeadTooLarge reports a start line and header block over the limit.
var ErrHeadTooLarge = errors.New("message head too large")

// ReadHead reads a start line and header block, up to and including the empty line, appending
// to buf (pass buf[:0] for a new head; pass what an interrupted call returned to resume it
// after a read deadline). Empty lines before the start line are skipped (RFC 9112 §2.2).
// Reading stops with ErrHeadTooLarge once limit bytes are exceeded.
func ReadHead(br *bufio.Reader, buf []byte, limit int) ([]byte, error) {
	lineStart := bytes.LastIndexByte(buf, '\n') + 1
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) > limit {
			return buf, ErrHeadTooLarge
		}
		buf = append(buf, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return buf, err
		}
		line := buf[lineStart:]
		if len(line) == 1 || len(line) == 2 && line[0] == '\r' {
			if lineStart == 0 {
				buf = buf[:0] // an empty line before the start line
				continue
			}
			return buf, nil
		}
		lineStart = len(buf)
	}
}

// StartLine splits a head into its start line (without the line ending) and the field block.
func StartLine(head string) (line, fields string) {
	line, fields, _ = strings.Cut(head, "\n")
	return strings.TrimSuffix(line, "\r"), fields
}

// FieldError is a malformed header field line.
type FieldError struct{ Line, Reason string }

func (e *FieldError) Error() string {
	l := e.Line
	if len(l) > 64 {
		l = l[:64] + "..."
	}
	return e.Reason + ": " + strconv.Quote(l)
}

// Fields walks the fields of a header block in order:
//
//	f := wire.Fields{Block: block}
//	for f.Next() { use(f.Key, f.Value) }
//	if f.Err != nil { ... }
//
// Keys are canonical and values trimmed. Obsolete line folding, names that are not tokens
// (including whitespace before the colon) and values with control characters stop the walk
// with Err set.
type Fields struct {
	Block      string
	Key, Value string
	Err        error
}

// Next moves to the next field; false at the end of the block or on an error.
func (f *Fields) Next() bool {
	if f.Err != nil || f.Block == "" {
		return false
	}
	var line string
	line, f.Block, _ = strings.Cut(f.Block, "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		f.Block = ""
		return false
	}
	if line[0] == ' ' || line[0] == '\t' {
		f.Err = &FieldError{line, "obsolete line folding is not allowed"}
		return false
	}
	name, value, ok := strings.Cut(line, ":")
	if !ok || !httpguts.ValidHeaderFieldName(name) {
		f.Err = &FieldError{line, "malformed header line"}
		return false
	}
	value = strings.Trim(value, " \t")
	if !httpguts.ValidHeaderFieldValue(value) {
		f.Err = &FieldError{line, "invalid header value"}
		return false
	}
	f.Key, f.Value = textproto.CanonicalMIMEHeaderKey(name), value
	return true
}

// Values hands out single-value slices for a header map from one backing array.
type Values []string

// NewValues sizes the backing array for a block of fields (one per line at most).
func NewValues(block string) Values { return make(Values, 0, strings.Count(block, "\n")) }

// Add appends value under key: a new key gets a slice of the shared array capped at one
// element, so a later append to it copies instead of overwriting its neighbour.
func (v *Values) Add(h http.Header, key, value string) {
	if vv, ok := h[key]; ok {
		h[key] = append(vv, value)
		return
	}
	*v = append(*v, value)
	n := len(*v)
	h[key] = (*v)[n-1 : n : n]
}
