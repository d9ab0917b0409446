package accesslog

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string: quotes, backslashes and control characters
// escaped, invalid UTF-8 replaced by U+FFFD, and <, >, & and U+2028/U+2029 escaped as
// encoding/json does (log viewers embed lines in HTML and JavaScript). It is the one JSON
// string encoder of the access log; the proxy uses it too.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendJSONContent(b, s)
	return append(b, '"')
}

// jsonSafe reports whether c (ASCII) goes into a JSON string as itself.
func jsonSafe(c byte) bool {
	return c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
}

// appendJSONContent appends s escaped for the inside of a JSON string (no quotes). It takes a
// string or bytes (a value rendered in place, see escapeTail).
func appendJSONContent[T string | []byte](b []byte, s T) []byte {
	// Fast path: most values (paths, hosts, IDs) need no escaping at all.
	clean := 0
	for clean < len(s) && jsonSafe(s[clean]) {
		clean++
	}
	b = append(b, s[:clean]...)
	for i := clean; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case jsonSafe(c):
				b = append(b, c)
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			default: // other control characters, <, >, &
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			continue
		}
		// At most 4 bytes: converting bytes to a string here stays on the stack.
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return b
}

// textSafe reports whether c goes into a text line as itself: everything but control
// characters, so that a value never breaks the line.
func textSafe(c byte) bool { return c >= 0x20 && c != 0x7f }

// appendTextContent appends s for a text line: control characters are escaped (\n, \r, \t,
// \xHH) so one record stays one line; everything else, invalid UTF-8 included, is copied.
func appendTextContent[T string | []byte](b []byte, s T) []byte {
	clean := 0
	for clean < len(s) && textSafe(s[clean]) {
		clean++
	}
	b = append(b, s[:clean]...)
	for i := clean; i < len(s); i++ {
		switch c := s[i]; {
		case textSafe(c):
			b = append(b, c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		}
	}
	return b
}
