package wasm

import (
	"bytes"
	"slices"
	"testing"
)

func TestParseHeaderList(t *testing.T) {
	h, err := parseHeaderList([]byte("A\x001\x00b\x002\x00A\x003\x00"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(h.Values("A"), []string{"1", "3"}) || h.Get("B") != "2" {
		t.Fatalf("got %v", h)
	}
	for _, bad := range []string{"A", "A\x00", "A\x001", "\x00v\x00", "A B\x00v\x00", "A\x00v\nx\x00"} {
		if _, err := parseHeaderList([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if h, err := parseHeaderList(nil); h != nil || err != nil {
		t.Errorf("empty list: %v %v", h, err)
	}
}

// FuzzParseHeaderList feeds a guest's fetch header list to the parser: it must not panic, and
// whatever it accepts must encode back to a list it reads the same.
func FuzzParseHeaderList(f *testing.F) {
	f.Add([]byte("Content-Type\x00text/plain\x00X-A\x00\x00"))
	f.Add([]byte("a\x00b"))
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHeaderList(b)
		if err != nil {
			return
		}
		var enc []byte
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range h {
				if !yield(k) {
					return
				}
			}
		}) {
			for _, v := range h[k] {
				enc = appendList(enc, k, v)
			}
		}
		h2, err := parseHeaderList(enc)
		if err != nil {
			t.Fatalf("re-encoded %q: %v", enc, err)
		}
		if len(h) != len(h2) {
			t.Fatalf("%v != %v", h, h2)
		}
		for k, vs := range h {
			if !slices.Equal(vs, h2[k]) || bytes.ContainsRune([]byte(k), 0) {
				t.Fatalf("%v != %v", h, h2)
			}
		}
	})
}
