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

// safeBytes classifies bytes for the escapers' fast paths (one load per byte instead of
// several comparisons): jsonOK, the ASCII bytes a JSON string holds as themselves; textOK, the
// bytes a text line holds as themselves (all but control characters).
var safeBytes = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		if c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
			t[c] |= jsonOK
		}
		if c >= 0x20 && c != 0x7f {
			t[c] |= textOK
		}
	}
	return t
}()

const (
	jsonOK = 1 << iota
	textOK
)

// jsonSafe reports whether c goes into a JSON string as itself (ASCII only).
func jsonSafe(c byte) bool { return safeBytes[c]&jsonOK != 0 }

// appendJSONContent appends s escaped for the inside of a JSON string (no quotes). It takes a
// string or bytes (a value rendered in place, see escapeTail).
func appendJSONContent[T string | []byte](b []byte, s T) []byte {
	// Fast path: most values (paths, hosts, IDs) need no escaping at all.
	clean := jsonCleanPrefix(s)
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
func textSafe(c byte) bool { return safeBytes[c]&textOK != 0 }

// appendTextContent appends s for a text line: control characters are escaped (\n, \r, \t,
// \xHH) so one record stays one line; everything else, invalid UTF-8 included, is copied.
func appendTextContent[T string | []byte](b []byte, s T) []byte {
	clean := textCleanPrefix(s)
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

// The fast paths test eight bytes at a time (SWAR): with x eight bytes of the input,
// hasZero(x^rep(c)) says one of them is c, hasLess(x, n) that one is below n (n <= 0x80; each
// test is exact about whether any byte matches, which is all that is asked).
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

func hasZero(x uint64) uint64          { return (x - lsb) & ^x & msb }
func hasLess(x uint64, n uint8) uint64 { return (x - lsb*uint64(n)) & ^x & msb }

// load64 reads eight bytes little-endian (the compiler makes it one load).
func load64[T string | []byte](s T, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// jsonCleanPrefix is the length of s's prefix that a JSON string holds as it is.
func jsonCleanPrefix[T string | []byte](s T) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := load64(s, i)
		// Non-ASCII, control characters, '"' or '&' (0x22, 0x26: equal but for bit 2), '<' or
		// '>' (0x3c, 0x3e: but for bit 1), '\\'.
		if x&msb|hasLess(x, 0x20)|hasZero((x^(lsb*0x22))&(lsb*0xfb))|hasZero((x^(lsb*0x3c))&(lsb*0xfd))|hasZero(x^(lsb*'\\')) != 0 {
			break
		}
	}
	for i < len(s) && jsonSafe(s[i]) {
		i++
	}
	return i
}

// textCleanPrefix is the length of s's prefix that a text line holds as it is.
func textCleanPrefix[T string | []byte](s T) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := load64(s, i)
		if hasLess(x, 0x20)|hasZero(x^(lsb*0x7f)) != 0 {
			break
		}
	}
	for i < len(s) && textSafe(s[i]) {
		i++
	}
	return i
}
