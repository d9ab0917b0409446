package wasm

import (
	"errors"
	"net/http"
)

// appendList appends each string of list to dst, NUL-terminated: the list encoding of the
// http-wasm ABI, which the apoxy module uses for header name/value pairs as well.
func appendList(dst []byte, list ...string) []byte {
	for _, s := range list {
		dst = append(dst, s...)
		dst = append(dst, 0)
	}
	return dst
}

// errBadList is a guest's malformed list.
var errBadList = errors.New("wasm: malformed header list")

// parseHeaderList decodes a guest's "name\0value\0..." list into a header (nil when b is
// empty). Every string must be NUL-terminated, names and values valid for HTTP, and the
// strings must pair up.
func parseHeaderList(b []byte) (http.Header, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if b[len(b)-1] != 0 {
		return nil, errBadList
	}
	h := http.Header{}
	for len(b) > 0 {
		name, rest, ok := cutNUL(b)
		if !ok {
			return nil, errBadList
		}
		value, rest, ok := cutNUL(rest)
		if !ok {
			return nil, errBadList
		}
		if !validHeaderName(string(name)) || !validHeaderValue(string(value)) {
			return nil, errBadList
		}
		h.Add(string(name), string(value))
		b = rest
	}
	return h, nil
}

// cutNUL splits b at its first NUL.
func cutNUL(b []byte) (s, rest []byte, ok bool) {
	for i, c := range b {
		if c == 0 {
			return b[:i], b[i+1:], true
		}
	}
	return nil, nil, false
}

// validHeaderName reports whether s is an HTTP token (RFC 9110 field-name).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		switch c {
		case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
			continue
		}
		return false
	}
	return true
}

// validHeaderValue reports whether s holds no control characters but tab (no CR, LF or
// NUL: a value must not split a header).
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
