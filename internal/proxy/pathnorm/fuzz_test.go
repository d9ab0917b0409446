package pathnorm

import (
	"errors"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// FuzzNormalize normalises arbitrary paths under every combination of options. A path either is
// refused with one of the package's errors or yields a result that is normal: it starts with '/',
// has no dot segment (decoded, or before a ';') in either form, no "//" unless slashes are kept,
// decodes to decodedOut, holds no NUL and normalises to itself. The result must also equal that of
// reference, a straightforward split-and-stack rendering of the same rules.
func FuzzNormalize(f *testing.F) {
	for _, v := range vectors {
		f.Add(v.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		for _, action := range []SlashAction{RejectEncodedSlash, KeepEncodedSlash, DecodeEncodedSlash} {
			for flags := range 4 {
				o := Options{EncodedSlashes: action, KeepSlashes: flags&1 != 0, BackslashAsSlash: flags&2 != 0}
				checkNormalize(t, in, o)
			}
		}
	})
}

func checkNormalize(t *testing.T, in string, o Options) {
	t.Helper()
	esc, dec, err := Normalize(in, o)
	refEsc, refDec, refOK := reference(in, o)
	if err != nil {
		if !knownError(err) {
			t.Fatalf("Normalize(%q, %+v): unknown error %v", in, o, err)
		}
		if esc != "" || dec != "" {
			t.Fatalf("Normalize(%q, %+v) = %q, %q with error %v", in, o, esc, dec, err)
		}
		if refOK {
			t.Fatalf("Normalize(%q, %+v) refused (%v), reference gives %q, %q", in, o, err, refEsc, refDec)
		}
		return
	}
	if !refOK || esc != refEsc || dec != refDec {
		t.Fatalf("Normalize(%q, %+v) = %q, %q; reference gives %q, %q, ok %v", in, o, esc, dec, refEsc, refDec, refOK)
	}
	if !strings.HasPrefix(esc, "/") {
		t.Fatalf("Normalize(%q, %+v) = %q: not absolute", in, o, esc)
	}
	for seg := range strings.SplitSeq(esc[1:], "/") {
		d, err := url.PathUnescape(seg)
		if err != nil {
			t.Fatalf("Normalize(%q, %+v) = %q: segment %q does not unescape: %v", in, o, esc, seg, err)
		}
		if isDotName(seg) || isDotName(d) {
			t.Fatalf("Normalize(%q, %+v) = %q: dot segment %q", in, o, esc, seg)
		}
	}
	// In the decoded form kept %2F and %5C separate too.
	for seg := range strings.SplitSeq(strings.ReplaceAll(dec[1:], `\`, "/"), "/") {
		if isDotName(seg) {
			t.Fatalf("Normalize(%q, %+v) = %q, decoded %q: dot segment %q", in, o, esc, dec, seg)
		}
	}
	if !o.KeepSlashes && (strings.Contains(esc, "//") || strings.Contains(dec, "//")) {
		t.Fatalf("Normalize(%q, %+v) = %q, %q: duplicate slash", in, o, esc, dec)
	}
	if u, err := url.PathUnescape(esc); err != nil || u != dec {
		t.Fatalf("Normalize(%q, %+v) = %q, %q; url.PathUnescape gives %q, %v", in, o, esc, dec, u, err)
	}
	if strings.IndexByte(dec, 0) >= 0 {
		t.Fatalf("Normalize(%q, %+v) = %q, %q: NUL", in, o, esc, dec)
	}
	for i := 0; i < len(esc); i++ {
		if c := esc[i]; c != '/' && c != '%' && class[c] != clsLiteral {
			t.Fatalf("Normalize(%q, %+v) = %q: byte %q not allowed in a path", in, o, esc, c)
		}
	}
	if esc2, dec2, err := Normalize(esc, o); err != nil || esc2 != esc || dec2 != dec {
		t.Fatalf("Normalize(%q, %+v) = %q, %q; again gives %q, %q, %v", in, o, esc, dec, esc2, dec2, err)
	}
	if in != "" {
		if isNormal(in, o.KeepSlashes) && (esc != in || dec != in) {
			t.Fatalf("Normalize(%q, %+v) = %q, %q; fast path should return it unchanged", in, o, esc, dec)
		}
		if e, d, err := normalize(in, o); err != nil || e != esc || d != dec {
			t.Fatalf("slow path on %q, %+v = %q, %q, %v; Normalize gives %q, %q", in, o, e, d, err, esc, dec)
		}
	}
}

func knownError(err error) bool {
	for _, e := range []error{ErrNotAbsolute, ErrBadEscape, ErrEncodedNUL, ErrControlChar, ErrEncodedSlash, ErrBackslash} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// isDotName reports whether a decoded segment, up to its first ';', is "." or "..".
func isDotName(seg string) bool {
	before, _, _ := strings.Cut(seg, ";")
	return before == "." || before == ".."
}

var escapeRE = regexp.MustCompile(`%[0-9A-Fa-f]{2}`)

// reference normalises p by the package's rules the simple way: validate the whole path, decode
// encoded slashes (when asked) by substitution, split at '/', put each segment in normal form,
// then resolve the segments on a stack. ok is false when the path is refused.
func reference(p string, o Options) (esc, dec string, ok bool) {
	if p == "" {
		return "/", "/", true
	}
	if p[0] != '/' {
		return "", "", false
	}
	if _, err := url.PathUnescape(p); err != nil {
		return "", "", false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\' && !o.BackslashAsSlash {
			return "", "", false
		}
	}
	refused := false
	p = escapeRE.ReplaceAllStringFunc(p, func(e string) string {
		switch strings.ToUpper(e) {
		case "%00":
			refused = true
		case "%2F", "%5C":
			switch o.EncodedSlashes {
			case KeepEncodedSlash:
			case DecodeEncodedSlash:
				return "/"
			default:
				refused = true
			}
		}
		return e
	})
	if refused {
		return "", "", false
	}
	p = strings.ReplaceAll(p, `\`, "/")

	segs := strings.Split(p[1:], "/")
	var stack []string
	for i, seg := range segs {
		seg = normalSegment(seg)
		last := i == len(segs)-1
		d, _ := url.PathUnescape(seg)
		before, _, _ := strings.Cut(d, ";")
		switch {
		case before == "." || before == "..":
			if before == ".." && len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			if last {
				stack = append(stack, "")
			}
		case seg == "" && !last && !o.KeepSlashes:
		default:
			stack = append(stack, seg)
		}
	}
	esc = "/" + strings.Join(stack, "/")
	dec, err := url.PathUnescape(esc)
	if err != nil {
		panic(err)
	}
	// Kept encoded slashes separate segments in the decoded form: it must be normal too.
	pieces := strings.Split(strings.ReplaceAll(dec[1:], `\`, "/"), "/")
	for i, piece := range pieces {
		if isDotName(piece) || piece == "" && i < len(pieces)-1 && !o.KeepSlashes {
			return "", "", false
		}
	}
	return esc, dec, true
}

// normalSegment percent-encodes the literal bytes of seg that a path segment may not hold, then
// decodes escapes of unreserved characters and uppercases the others.
func normalSegment(seg string) string {
	var b strings.Builder
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c == '%' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("-._~!$&'()*+,;=:@", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(strconv.FormatUint(uint64(c)|0x100, 16)[1:]))
		}
	}
	return escapeRE.ReplaceAllStringFunc(b.String(), func(e string) string {
		v, _ := strconv.ParseUint(e[1:], 16, 8)
		c := byte(v)
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			return string(rune(c))
		}
		return strings.ToUpper(e)
	})
}
