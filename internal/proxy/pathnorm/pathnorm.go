// Package pathnorm normalises the path of a request target before the gateway matches routes on
// it and forwards it upstream, so that a route and the backend behind it agree on which resource
// a request names. Without it `/public/../admin`, `//admin`, `/./admin`, `/public/%2e%2e/admin`
// or `/public%2F..%2Fadmin` match a route for `/public` (or none) and then reach `/admin` on a
// backend that resolves them itself. The rules follow Envoy's edge defaults (normalize_path,
// merge_slashes, path_with_escaped_slashes_action) and are applied in one pass:
//
//   - the path must start with '/' (the empty path becomes "/"; "*" is the caller's business);
//   - every percent-escape must be well formed and is decoded once only: escapes of unreserved
//     characters (ALPHA DIGIT - . _ ~) are replaced by the character, every other escape is kept
//     with uppercase hex digits, %00 is refused, %2F and %5C follow [Options.EncodedSlashes];
//   - literal bytes that RFC 3986 does not allow in a path (space, '"', '#', '<', '>', '?', '[',
//     ']', '^', '`', '{', '|', '}' and bytes >= 0x80) are percent-encoded, control characters
//     are refused, a literal '\' follows [Options.BackslashAsSlash];
//   - duplicate slashes are merged unless [Options.KeepSlashes];
//   - dot segments are removed as in RFC 3986 §5.2.4, comparing segments after decoding.
//
// A path that needs none of this is returned as it is, without allocating.
package pathnorm

import (
	"bytes"
	"errors"
	"strings"
)

// Errors returned by [Normalize]. A caller answers a request whose path is refused with 400.
var (
	// ErrNotAbsolute means the path does not start with '/'. This includes "*", the target of
	// a server-wide OPTIONS request, which has no path to normalise: the caller handles it.
	ErrNotAbsolute = errors.New("pathnorm: path does not start with '/'")
	// ErrBadEscape means a '%' is not followed by two hexadecimal digits ("%zz", "%4", "%u002e").
	ErrBadEscape = errors.New("pathnorm: malformed percent-escape in path")
	// ErrEncodedNUL means the path contains %00, which no backend handles the same way.
	ErrEncodedNUL = errors.New("pathnorm: path contains an encoded NUL (%00)")
	// ErrControlChar means the path contains a literal control character (below 0x20, or 0x7F).
	ErrControlChar = errors.New("pathnorm: path contains a control character")
	// ErrEncodedSlash means the path contains %2F or %5C and [RejectEncodedSlash] is in force,
	// or [KeepEncodedSlash] is and a kept encoded slash would make the decoded path ambiguous
	// (see [KeepEncodedSlash]).
	ErrEncodedSlash = errors.New("pathnorm: path contains an encoded slash or backslash")
	// ErrBackslash means the path contains a literal '\' and [Options.BackslashAsSlash] is off.
	ErrBackslash = errors.New("pathnorm: path contains a backslash")
)

// SlashAction is what to do with %2F and %5C (encoded slash and backslash) in a path. Backends
// disagree on whether they separate segments (Tomcat, IIS and many frameworks decode them before
// resolving dot segments), so a path holding them can name different resources at the gateway and
// upstream.
type SlashAction uint8

const (
	// RejectEncodedSlash, the default, refuses the path with [ErrEncodedSlash]. Any value other
	// than the three defined ones acts as this one.
	RejectEncodedSlash SlashAction = iota
	// KeepEncodedSlash keeps %2F and %5C encoded (with uppercase hex) in the escaped path: they
	// are data, not separators, for normalisation and for the backend. The decoded path routes
	// match on is url.PathUnescape of the escaped one, so there they read as '/' and '\'. To keep
	// that decoded path free of what normalisation removes elsewhere, a path is refused with
	// [ErrEncodedSlash] when, splitting at encoded slashes as well, a piece is a dot segment
	// ("/a/..%2Fb") or an empty piece would make "//" ("/%2Fa", "/a%2F/b") unless
	// [Options.KeepSlashes]. This is stricter than Envoy's KEEP_UNCHANGED.
	KeepEncodedSlash
	// DecodeEncodedSlash decodes %2F and %5C to '/' before slashes and dot segments are
	// processed, so "/public%2F..%2Fadmin" becomes "/admin".
	DecodeEncodedSlash
)

// String returns the name of the action, for configuration errors and logs.
func (a SlashAction) String() string {
	switch a {
	case RejectEncodedSlash:
		return "Reject"
	case KeepEncodedSlash:
		return "Keep"
	case DecodeEncodedSlash:
		return "Decode"
	}
	return "Reject(invalid)"
}

// Options tunes [Normalize]. The zero value is the safe edge default: encoded slashes refused,
// duplicate slashes merged, backslashes refused.
type Options struct {
	// EncodedSlashes is what to do with %2F and %5C.
	EncodedSlashes SlashAction
	// KeepSlashes disables merging of duplicate slashes (by default "//a///b" becomes "/a/b").
	// A kept leading "//" reads as an authority to URL parsers: send the escaped path upstream
	// as a request target, never through url.Parse.
	KeepSlashes bool
	// BackslashAsSlash turns a literal '\' into '/', as Windows servers and browsers do, instead
	// of refusing the path with [ErrBackslash]. Backends disagree on '\', so by default it is
	// refused rather than forwarded.
	BackslashAsSlash bool
}

// Normalize normalises the escaped path of a request target (without the query: the part of the
// target before '?', or url.URL.EscapedPath). It returns escapedOut, the normalised path in RFC
// 3986 form, which is what goes upstream, and decodedOut, url.PathUnescape(escapedOut), which is
// what routes match on. A path is refused with one of this package's errors, and then both
// results are empty.
//
// Dot segments are compared after decoding, so "%2e%2E" is "..". A segment whose part before the
// first ';' (literal or %3B) is "." or ".." counts as that dot segment, parameters and all:
// RFC 3986 says "..;x" is an ordinary segment, but Tomcat and other Java servers strip path
// parameters before resolving dots, and "/public/..;/admin" must not reach their /admin through
// a route for /public. Semicolons elsewhere are kept.
//
// The result is idempotent: normalising escapedOut again with the same options returns it
// unchanged.
func Normalize(escaped string, opts Options) (escapedOut, decodedOut string, err error) {
	if escaped == "" {
		return "/", "/", nil
	}
	if escaped[0] != '/' {
		return "", "", ErrNotAbsolute
	}
	if isNormal(escaped, opts.KeepSlashes) {
		return escaped, escaped, nil
	}
	return normalize(escaped, opts)
}

// Byte classes for a path's literal bytes.
const (
	clsLiteral uint8 = iota // allowed in a path segment as it is: unreserved, sub-delims, ':', '@'
	clsEncode               // printable but not allowed unescaped, or >= 0x80: percent-encoded
	clsControl              // control character: refused
	clsSpecial              // '/', '%' and '\': handled one by one
)

var class = func() (t [256]uint8) {
	for c := range 256 {
		b := byte(c)
		switch {
		case b < 0x20 || b == 0x7f:
			t[c] = clsControl
		case b == '/' || b == '%' || b == '\\':
			t[c] = clsSpecial
		case unreserved(b) || strings.IndexByte("!$&'()*+,;=:@", b) >= 0:
			t[c] = clsLiteral
		default:
			t[c] = clsEncode
		}
	}
	return t
}()

// unreserved reports whether c is an RFC 3986 unreserved character, whose escape is decoded.
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

const upperhex = "0123456789ABCDEF"

// unhex returns the value of hexadecimal digit c, or 0xff if c is not one.
func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 0xff
}

// dots reports whether seg, a segment in normalised form (unreserved characters decoded, other
// escapes uppercase), is a dot segment: 1 for ".", 2 for "..", 0 otherwise. The part before the
// first ';' or %3B is what counts.
func dots[T string | []byte](seg T) int {
	n := 0
	for n < len(seg) && n < 2 && seg[n] == '.' {
		n++
	}
	if n == 0 {
		return 0
	}
	if rest := seg[n:]; len(rest) == 0 || rest[0] == ';' ||
		len(rest) >= 3 && rest[0] == '%' && rest[1] == '3' && rest[2] == 'B' {
		return n
	}
	return 0
}

// isNormal reports whether p, which starts with '/', is already normalised: every byte is allowed
// as it is, there is no '%' or '\', no dot segment and, unless keepSlashes, no empty segment but a
// trailing one. Such a path decodes to itself.
func isNormal(p string, keepSlashes bool) bool {
	start := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			if class[p[i]] != clsLiteral {
				return false
			}
			continue
		}
		seg := p[start:i]
		if dots(seg) != 0 || len(seg) == 0 && i < len(p) && !keepSlashes {
			return false
		}
		start = i + 1
	}
	return true
}

// normalize is the slow path of Normalize for p starting with '/'. It reads p one segment at a
// time, appending the segment's normal form after a '/' to out, then drops it again if it is
// empty (merged slashes) or a dot segment, ".." dropping the segment before it too. A dot segment
// that ends the path leaves a trailing '/' ("/a/b/.." is "/a/"), as RFC 3986 §5.2.4 does.
func normalize(p string, opts Options) (string, string, error) {
	out := make([]byte, 0, 2*len(p)+16) // room for the escaped path and its decoding
	keptSlash := false
	for i := 1; ; {
		out = append(out, '/')
		start := len(out)
		sep := false
	segment:
		for i < len(p) {
			c := p[i]
			switch class[c] {
			case clsLiteral:
				out = append(out, c)
				i++
				continue
			case clsEncode:
				out = append(out, '%', upperhex[c>>4], upperhex[c&15])
				i++
				continue
			case clsControl:
				return "", "", ErrControlChar
			}
			switch c {
			case '/':
				i++
				sep = true
				break segment
			case '\\':
				if !opts.BackslashAsSlash {
					return "", "", ErrBackslash
				}
				i++
				sep = true
				break segment
			}
			// c == '%'
			if len(p)-i < 3 {
				return "", "", ErrBadEscape
			}
			hi, lo := unhex(p[i+1]), unhex(p[i+2])
			if hi > 15 || lo > 15 {
				return "", "", ErrBadEscape
			}
			i += 3
			switch v := hi<<4 | lo; {
			case v == 0:
				return "", "", ErrEncodedNUL
			case unreserved(v):
				out = append(out, v)
			case v == '/' || v == '\\':
				switch opts.EncodedSlashes {
				case DecodeEncodedSlash:
					sep = true
					break segment
				case KeepEncodedSlash:
					out = append(out, '%', upperhex[hi], upperhex[lo])
					keptSlash = true
				default:
					return "", "", ErrEncodedSlash
				}
			default:
				out = append(out, '%', upperhex[hi], upperhex[lo])
			}
		}
		last := !sep
		switch dots(out[start:]) {
		case 1:
			out = out[:start-1]
			if last {
				out = append(out, '/')
			}
		case 2:
			out = out[:start-1]
			if j := bytes.LastIndexByte(out, '/'); j >= 0 {
				out = out[:j]
			}
			if last {
				out = append(out, '/')
			}
		default:
			if start == len(out) && !last && !opts.KeepSlashes {
				out = out[:start-1]
			}
		}
		if last {
			break
		}
	}
	if keptSlash {
		if err := checkKeptSlashes(out, opts.KeepSlashes); err != nil {
			return "", "", err
		}
	}
	// One string holds both results: the escaped path, then its decoding if that differs.
	n := len(out)
	first := bytes.IndexByte(out, '%')
	if first < 0 {
		escaped := string(out)
		return escaped, escaped, nil
	}
	out = append(out, out[:first]...)
	for i := first; i < n; {
		if c := out[i]; c != '%' {
			out = append(out, c)
			i++
			continue
		}
		out = append(out, unhex(out[i+1])<<4|unhex(out[i+2]))
		i += 3
	}
	both := string(out)
	return both[:n], both[n:], nil
}

// checkKeptSlashes checks a normalised path holding kept %2F or %5C: split at those as well as at
// '/', it must have no dot piece and, unless keepSlashes, no empty piece but a trailing one, so
// that its decoded form is as normal as a path without encoded slashes.
func checkKeptSlashes(p []byte, keepSlashes bool) error {
	start := 1
	for i := 1; ; {
		n := 0 // length of the separator at i
		switch {
		case i == len(p):
		case p[i] == '/':
			n = 1
		case p[i] == '%' && (p[i+1] == '2' && p[i+2] == 'F' || p[i+1] == '5' && p[i+2] == 'C'):
			n = 3
		case p[i] == '%':
			i += 3
			continue
		default:
			i++
			continue
		}
		piece := p[start:i]
		if dots(piece) != 0 || len(piece) == 0 && i < len(p) && !keepSlashes {
			return ErrEncodedSlash
		}
		if i == len(p) {
			return nil
		}
		i += n
		start = i
	}
}
