package oidc

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fuzzJar is one jar (and key ring) for a fuzzing process, with a genuine session cookie
// sealed under it for the seeds.
var fuzzJar = sync.OnceValues(func() (*cookieJar, []string) {
	s, err := newSealer(KeyRing{[]byte("0123456789abcdef0123456789abcdef"), []byte("fedcba9876543210fedcba9876543210")})
	if err != nil {
		panic(err)
	}
	j := &cookieJar{prefix: "p", sealer: s}
	var seeds []string
	for _, sz := range [][3]int{{20, 5, 5}, {3000, 1000, 100}, {6000, 2000, 500}} {
		d := sampleSession(sz[0], sz[1], sz[2])
		vals, err := j.encodeSession(&d)
		if err != nil {
			panic(err)
		}
		var parts []string
		for i, v := range vals {
			parts = append(parts, j.chunkName(i)+"="+v)
		}
		seeds = append(seeds, strings.Join(parts, "; "))
	}
	return j, seeds
})

// FuzzDecodeSession feeds arbitrary Cookie headers to the session decoder, as the RP reads
// every request: it must never panic, and anything it accepts must be a well-formed session
// that survives another round trip. (Forging one would need the key: mutations of the
// genuine seeds must all be refused, except the ones that leave the chunk values intact.)
func FuzzDecodeSession(f *testing.F) {
	j, seeds := fuzzJar()
	for _, s := range seeds {
		f.Add(s)
	}
	f.Add("p_0=1.AAAA; p_1=x")
	f.Add("p_0=2.; p_1=; p_0=3.")
	f.Add("p_0=" + strings.Repeat("A", 5000))
	f.Fuzz(func(t *testing.T, header string) {
		r := &http.Request{Header: http.Header{"Cookie": {header}}}
		for _, vals := range j.sessionValues(r) {
			if len(vals) > MaxChunks {
				t.Fatalf("%d chunk candidates", len(vals))
			}
			d, key, err := j.DecodeSession(vals)
			if err != nil {
				continue
			}
			if key < 0 || key > 1 || d.IDToken == "" || d.Start.After(d.Expiry) {
				t.Fatalf("accepted a bad session: key %d %+v", key, d)
			}
			again, err := j.encodeSession(&d)
			if err != nil {
				t.Fatalf("re-encoding: %v", err)
			}
			d2, _, err := j.DecodeSession(again)
			if err != nil || d2 != d {
				t.Fatalf("round trip: %v", err)
			}
		}
	})
}

// FuzzUnmarshalSession fuzzes the plaintext decoder behind the AEAD (which the cookie fuzzer
// cannot get through): no panic, and what it accepts re-encodes to the same session.
func FuzzUnmarshalSession(f *testing.F) {
	for _, sz := range [][3]int{{10, 0, 0}, {100, 20, 30}} {
		d := sampleSession(sz[0], sz[1], sz[2])
		f.Add(d.marshal())
	}
	f.Add([]byte{1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Add([]byte{1, 1, 2, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := unmarshalSession(b)
		if err != nil {
			return
		}
		if d.IDToken == "" || d.Start.After(d.Expiry) || len(d.IDToken) > MaxTokenSize ||
			!tokenChars(d.IDToken) || !tokenChars(d.AccessToken) || !tokenChars(d.RefreshToken) {
			t.Fatalf("accepted %+v", d)
		}
		d2, err := unmarshalSession(d.marshal())
		if err != nil || d2 != d {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzDecodeState fuzzes the state cookie decoder: no panic, and nothing but a genuine
// state for the given value is accepted.
func FuzzDecodeState(f *testing.F) {
	j, _ := fuzzJar()
	st := newLoginState(time.Unix(1_800_000_000, 0), "h", "/x")
	name, v := j.encodeState(st)
	f.Add(v, st.State)
	f.Add(v[:20], st.State)
	f.Add("", "")
	f.Fuzz(func(t *testing.T, value, state string) {
		got, ok := j.decodeState(name, value, state, time.Unix(1_800_000_100, 0))
		if ok && (got.State != state || got.State != st.State) {
			t.Fatalf("accepted state %q for %q", got.State, state)
		}
	})
}

// FuzzSafeReturnPath checks the open-redirect guard on arbitrary input: the result always
// resolves, against any page of the app, to the app's own origin, and is returned unchanged
// when checked again.
func FuzzSafeReturnPath(f *testing.F) {
	for _, s := range []string{"/", "/a?b=c", "//evil.com", "/\\evil.com", "https://evil.com", "javascript:x", "/\t/evil", "/%2F/x", "/a/../../b"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://app.example/some/page?x=1")
	f.Fuzz(func(t *testing.T, in string) {
		out := safeReturnPath(in)
		if out != "/" && out != in {
			t.Fatalf("rewrote %q to %q", in, out)
		}
		if safeReturnPath(out) != out {
			t.Fatalf("not idempotent on %q", out)
		}
		if out[0] != '/' || (len(out) > 1 && (out[1] == '/' || out[1] == '\\')) {
			t.Fatalf("%q is not a same-origin path", out)
		}
		// What a browser does first: drop tabs and newlines, read "\" as "/".
		browserish := strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(out)
		u, err := base.Parse(browserish)
		if err == nil && (u.Host != "app.example" || u.Scheme != "https") {
			t.Fatalf("%q resolves to %s", out, u)
		}
	})
}
