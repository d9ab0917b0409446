package pathnorm

import (
	"errors"
	"testing"
)

var (
	reject     = Options{}
	keep       = Options{EncodedSlashes: KeepEncodedSlash}
	decode     = Options{EncodedSlashes: DecodeEncodedSlash}
	keepSl     = Options{KeepSlashes: true}
	backslash  = Options{BackslashAsSlash: true}
	decodeBack = Options{EncodedSlashes: DecodeEncodedSlash, BackslashAsSlash: true}
)

// vector is one case of TestNormalize. An empty dec with a nil err means dec equals esc.
type vector struct {
	in   string
	opts Options
	esc  string
	dec  string
	err  error
}

// vectors also seed FuzzNormalize.
var vectors = []vector{
	// Already normal: returned as they are.
	{in: "", esc: "/"},
	{in: "/", esc: "/"},
	{in: "/admin", esc: "/admin"},
	{in: "/a/b/c", esc: "/a/b/c"},
	{in: "/a/b/", esc: "/a/b/"},
	{in: "/.well-known/acme-challenge/x-Y_z~1", esc: "/.well-known/acme-challenge/x-Y_z~1"},
	{in: "/...", esc: "/..."},
	{in: "/a/..b/.c/c.", esc: "/a/..b/.c/c."},
	{in: "/foo@bar:baz!$&'()*+,;=", esc: "/foo@bar:baz!$&'()*+,;="},
	{in: "/a+b", esc: "/a+b"}, // '+' is not a space in a path

	// Not a path.
	{in: "*", err: ErrNotAbsolute},
	{in: "admin", err: ErrNotAbsolute},
	{in: "%2Fadmin", opts: decode, err: ErrNotAbsolute},
	{in: `\admin`, opts: backslash, err: ErrNotAbsolute},

	// Dot segments in every position.
	{in: "/./admin", esc: "/admin"},
	{in: "/public/../admin", esc: "/admin"},
	{in: "/a/./b/../c", esc: "/a/c"},
	{in: "/.", esc: "/"},
	{in: "/..", esc: "/"},
	{in: "/../../x", esc: "/x"},
	{in: "/a/..", esc: "/"},
	{in: "/a/b/..", esc: "/a/"},
	{in: "/a/b/../", esc: "/a/"},
	{in: "/a/.", esc: "/a/"},
	{in: "/a/./", esc: "/a/"},
	{in: "/a/b/../../../c", esc: "/c"},
	{in: "/a/b/./../c/./d/..", esc: "/a/c/"},

	// Encoded dots are dot segments; double encoding is decoded once only.
	{in: "/public/%2e%2e/admin", esc: "/admin"},
	{in: "/public/%2E%2E/admin", esc: "/admin"},
	{in: "/public/%2e%2E/admin", esc: "/admin"},
	{in: "/public/.%2e/admin", esc: "/admin"},
	{in: "/%2e/admin", esc: "/admin"},
	{in: "/a/b/%2e", esc: "/a/b/"},
	{in: "/a/b/%2E%2e", esc: "/a/"},
	{in: "/public/%252e%252e/admin", esc: "/public/%252e%252e/admin", dec: "/public/%2e%2e/admin"},
	{in: "/public/%252E%252E/admin", esc: "/public/%252E%252E/admin", dec: "/public/%2E%2E/admin"},

	// Duplicate slashes.
	{in: "//admin", esc: "/admin"},
	{in: "/a//b", esc: "/a/b"},
	{in: "/a///b", esc: "/a/b"},
	{in: "///", esc: "/"},
	{in: "/a//", esc: "/a/"},
	{in: "/a/..//b", esc: "/b"},
	{in: "//admin", opts: keepSl, esc: "//admin"},
	{in: "/a//b/../c", opts: keepSl, esc: "/a//c"},
	{in: "/a//.", opts: keepSl, esc: "/a//"},
	{in: "//..", opts: keepSl, esc: "/"},

	// Encoded slash under each action.
	{in: "/public%2F..%2Fadmin", opts: reject, err: ErrEncodedSlash},
	{in: "/public%2F..%2Fadmin", opts: keep, err: ErrEncodedSlash}, // decoded form would hold ".."
	{in: "/public%2F..%2Fadmin", opts: decode, esc: "/admin"},
	{in: "/public/%2e%2e%2fadmin", opts: decode, esc: "/admin"},
	{in: "/repos/a%2fb", opts: reject, err: ErrEncodedSlash},
	{in: "/repos/a%2fb", opts: keep, esc: "/repos/a%2Fb", dec: "/repos/a/b"},
	{in: "/repos/a%2fb", opts: decode, esc: "/repos/a/b"},
	{in: "/a%2F", opts: keep, esc: "/a%2F", dec: "/a/"},
	{in: "/%2Fadmin", opts: keep, err: ErrEncodedSlash}, // decoded form would be "//admin"
	{in: "/a%2F/b", opts: keep, err: ErrEncodedSlash},
	{in: "/a%2F%2Fb", opts: keep, err: ErrEncodedSlash},
	{in: "/%2Fadmin", opts: Options{EncodedSlashes: KeepEncodedSlash, KeepSlashes: true}, esc: "/%2Fadmin", dec: "//admin"},
	{in: "/%2Fadmin", opts: decode, esc: "/admin"},
	{in: "/a%2F%2F%2Fb", opts: decode, esc: "/a/b"},
	{in: "/a/b%2F..", opts: decode, esc: "/a/"},
	{in: "/a%2Fb", opts: Options{EncodedSlashes: 7}, err: ErrEncodedSlash}, // unknown action rejects

	// Encoded and literal backslash.
	{in: "/a%5Cb", opts: reject, err: ErrEncodedSlash},
	{in: "/a%5cb", opts: keep, esc: "/a%5Cb", dec: `/a\b`},
	{in: "/public/..%5Cadmin", opts: keep, err: ErrEncodedSlash},
	{in: "/public%5C..%5Cadmin", opts: decode, esc: "/admin"},
	{in: `/a\b`, err: ErrBackslash},
	{in: `/a\b`, opts: decode, err: ErrBackslash},
	{in: `/public\..\admin`, opts: backslash, esc: "/admin"},
	{in: `/a\\b\`, opts: backslash, esc: "/a/b/"},
	{in: `/a\%5C..\b`, opts: decodeBack, esc: "/b"},

	// Semicolons: "..;" and ".;" are dot segments, other parameters are kept.
	{in: "/a/..;/admin", esc: "/admin"},
	{in: "/a/.;/b", esc: "/a/b"},
	{in: "/a/..;jsessionid=1/b", esc: "/b"},
	{in: "/a/%2e%2e;x/admin", esc: "/admin"},
	{in: "/a/..%3B/admin", esc: "/admin"},
	{in: "/a/..%3b/admin", esc: "/admin"},
	{in: "/a/..;", esc: "/"},
	{in: "/a;jsessionid=1/b", esc: "/a;jsessionid=1/b"},
	{in: "/a/...;/b", esc: "/a/...;/b"},
	{in: "/a/b;..;/c", esc: "/a/b;..;/c"},
	{in: "/a/;../b", esc: "/a/;../b"},

	// Escapes: unreserved decoded, others kept with uppercase hex.
	{in: "/%61dmin", esc: "/admin"},
	{in: "/%7Euser/%7e", esc: "/~user/~"},
	{in: "/%41%5a%30%2D%5F", esc: "/AZ0-_"},
	{in: "/a%3fb", esc: "/a%3Fb", dec: "/a?b"},
	{in: "/a%3Fb", esc: "/a%3Fb", dec: "/a?b"},
	{in: "/a%25b", esc: "/a%25b", dec: "/a%b"},
	{in: "/a%2b%3b%40", esc: "/a%2B%3B%40", dec: "/a+;@"},
	{in: "/caf%c3%a9", esc: "/caf%C3%A9", dec: "/caf\u00e9"},
	{in: "/a%0ab", esc: "/a%0Ab", dec: "/a\nb"},

	// Literal bytes not allowed in a path are encoded.
	{in: "/a b", esc: "/a%20b", dec: "/a b"},
	{in: "/caf\u00e9", esc: "/caf%C3%A9", dec: "/caf\u00e9"},
	{in: "/\xff", esc: "/%FF", dec: "/\xff"},
	{in: "/\"<>^`{|}", esc: "/%22%3C%3E%5E%60%7B%7C%7D", dec: "/\"<>^`{|}"},
	{in: "/[x]", esc: "/%5Bx%5D", dec: "/[x]"},
	{in: "/a#b", esc: "/a%23b", dec: "/a#b"},
	// The query is not part of the input: a '?' that reaches here is data.
	{in: "/a?b=../c", esc: "/a%3Fb=../c", dec: "/a?b=../c"},
	{in: "/a/ ../b", esc: "/a/%20../b", dec: "/a/ ../b"},

	// Refused.
	{in: "/a%00b", err: ErrEncodedNUL},
	{in: "/a%00b", opts: decode, err: ErrEncodedNUL},
	{in: "/a%zz", err: ErrBadEscape},
	{in: "/a%4", err: ErrBadEscape},
	{in: "/a%", err: ErrBadEscape},
	{in: "/a%%41", err: ErrBadEscape},
	{in: "/%u002e%u002e/admin", err: ErrBadEscape},
	{in: "/a\x00b", err: ErrControlChar},
	{in: "/a\nb", err: ErrControlChar},
	{in: "/a\tb", err: ErrControlChar},
	{in: "/a\x7fb", err: ErrControlChar},
}

func TestNormalize(t *testing.T) {
	for _, v := range vectors {
		esc, dec, err := Normalize(v.in, v.opts)
		wantDec := v.dec
		if wantDec == "" && v.err == nil {
			wantDec = v.esc
		}
		if !errors.Is(err, v.err) || esc != v.esc || dec != wantDec {
			t.Errorf("Normalize(%q, %+v) = %q, %q, %v; want %q, %q, %v",
				v.in, v.opts, esc, dec, err, v.esc, wantDec, v.err)
		}
	}
}

func TestNormalizeIdempotent(t *testing.T) {
	extra := []string{
		"/a/b/c/../../d/./e//f/", "/%2E%2E/%2e/x%20y/%C3%A9/", "/x;y/..;z/w", "/a%2fb%5Cc",
		"/a\\b/../c", "/.well-known/", "/%7e%41/%3a%3A",
	}
	options := []Options{reject, keep, decode, keepSl, backslash, decodeBack,
		{EncodedSlashes: KeepEncodedSlash, KeepSlashes: true, BackslashAsSlash: true}}
	check := func(in string, o Options) {
		esc, dec, err := Normalize(in, o)
		if err != nil {
			return
		}
		esc2, dec2, err := Normalize(esc, o)
		if err != nil || esc2 != esc || dec2 != dec {
			t.Errorf("Normalize(%q, %+v) = %q, %q; normalising that again gives %q, %q, %v",
				in, o, esc, dec, esc2, dec2, err)
		}
	}
	for _, v := range vectors {
		check(v.in, v.opts)
	}
	for _, in := range extra {
		for _, o := range options {
			check(in, o)
		}
	}
}

// TestNormalPathUnchanged checks the fast path: a path that is already normal comes back as the
// same string, without allocating, and the slow path agrees with it.
func TestNormalPathUnchanged(t *testing.T) {
	for _, p := range []string{"/", "/api/v1/users/42", "/.well-known/acme-challenge/abc", "/a/b/", "/a;b=c/d"} {
		esc, dec, err := Normalize(p, reject)
		if err != nil || esc != p || dec != p {
			t.Errorf("Normalize(%q) = %q, %q, %v; want it unchanged", p, esc, dec, err)
		}
		if esc, dec, err := normalize(p, reject); err != nil || esc != p || dec != p {
			t.Errorf("slow path on %q = %q, %q, %v; want it unchanged", p, esc, dec, err)
		}
		if n := testing.AllocsPerRun(100, func() { Normalize(p, reject) }); n != 0 {
			t.Errorf("Normalize(%q) allocates %v times; want 0", p, n)
		}
	}
}

func TestSlashActionString(t *testing.T) {
	for a, want := range map[SlashAction]string{
		RejectEncodedSlash: "Reject", KeepEncodedSlash: "Keep", DecodeEncodedSlash: "Decode", 9: "Reject(invalid)",
	} {
		if got := a.String(); got != want {
			t.Errorf("SlashAction(%d).String() = %q; want %q", a, got, want)
		}
	}
}

var sink string

func BenchmarkNormalize(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sink, _, _ = Normalize("/api/v1/namespaces/default/pods/web-0/log", reject)
	}
}

func BenchmarkNormalizeDirty(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sink, _, _ = Normalize("/api//v1/./namespaces/%64efault/pods/x/../web-0/log%3f%20", reject)
	}
}
