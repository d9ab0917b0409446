package accesslog

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string: quotes, backslashes and control characters
// escaped, invalid UTF-8 replaced by U+FFFD, and <, >, & and U+2028/U+2029 escaped as
// encoding/json does (log viewers embed lines in HTML and JavaScript). It is the one JSON
// string encoder of the access log; the proxy uses it too.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendJSONContent(b, s, false)
	return append(b, '"')
}

// jsonSafe reports whether c (ASCII) goes into a JSON string as itself.
func jsonSafe(c byte) bool {
	return c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
}

// appendJSONContent appends s escaped for the inside of a JSON string (no quotes). With twice,
// the result is escaped once more, for JSON text that is itself the content of a JSON string
// (a metadata object inside a string value): every backslash and quote the first escaping
// writes is escaped again.
func appendJSONContent(b []byte, s string, twice bool) []byte {
	// Fast path: most values (paths, hosts, IDs) need no escaping at all.
	clean := 0
	for clean < len(s) && jsonSafe(s[clean]) {
		clean++
	}
	b = append(b, s[:clean]...)
	esc := `\`
	if twice {
		esc = `\\`
	}
	for i := clean; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case jsonSafe(c):
				b = append(b, c)
			case c == '"' || c == '\\':
				b = append(b, esc...)
				if twice {
					b = append(b, '\\')
				}
				b = append(b, c)
			case c == '\n':
				b = append(b, esc...)
				b = append(b, 'n')
			case c == '\r':
				b = append(b, esc...)
				b = append(b, 'r')
			case c == '\t':
				b = append(b, esc...)
				b = append(b, 't')
			default: // other control characters, <, >, &
				b = append(b, esc...)
				b = append(b, 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, esc...)
			b = append(b, "ufffd"...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, esc...)
			b = append(b, 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return b
}
