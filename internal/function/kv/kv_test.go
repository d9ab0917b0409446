package kv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/function"
)

// harness is what the conformance suite needs of a backend.
type harness struct {
	// ns is a function's namespace in one store shared by the whole suite.
	ns func(function string) function.KV
	// ttl is a TTL short enough to wait out, and wait lets it pass (moving the SQLite
	// store's clock; sleeping for Redis).
	ttl  time.Duration
	wait func()
	// maxValue is the value limit the store was opened with.
	maxValue int64
}

// testKV is the conformance suite every backend passes: the semantics of function.KV that
// a function relies on, whatever stores its keys.
func testKV(t *testing.T, h harness) {
	ctx := context.Background()
	// fresh is a namespace no other subtest uses.
	fresh := func(t *testing.T) function.KV { return h.ns(t.Name()) }

	t.Run("RoundTrip", func(t *testing.T) {
		kv := fresh(t)
		mustPut(t, kv, "greeting", "hello", function.KVPut{Metadata: `{"lang":"en"}`})
		v := mustGet(t, kv, "greeting")
		if string(v.Value) != "hello" || v.Metadata != `{"lang":"en"}` || !v.Expires.IsZero() {
			t.Fatalf("got %q meta %q expires %v", v.Value, v.Metadata, v.Expires)
		}
		mustPut(t, kv, "empty", "", function.KVPut{})
		if v := mustGet(t, kv, "empty"); len(v.Value) != 0 || v.Metadata != "" {
			t.Fatalf("empty value: got %q meta %q", v.Value, v.Metadata)
		}
		bin := []byte{0, 1, 2, 0xff, 0xfe, 0}
		if err := kv.Put(ctx, "binary", bin, function.KVPut{}); err != nil {
			t.Fatal(err)
		}
		if v := mustGet(t, kv, "binary"); !bytes.Equal(v.Value, bin) {
			t.Fatalf("binary value: got %x", v.Value)
		}
	})

	t.Run("Missing", func(t *testing.T) {
		kv := fresh(t)
		v, ok, err := kv.Get(ctx, "nope")
		if err != nil || ok || v.Value != nil {
			t.Fatalf("Get of a missing key: %+v %v %v", v, ok, err)
		}
		if err := kv.Delete(ctx, "nope"); err != nil {
			t.Fatalf("Delete of a missing key: %v", err)
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		kv := fresh(t)
		mustPut(t, kv, "k", "one", function.KVPut{Metadata: `"m1"`, TTL: time.Hour})
		mustPut(t, kv, "k", "two", function.KVPut{})
		v := mustGet(t, kv, "k")
		if string(v.Value) != "two" || v.Metadata != "" || !v.Expires.IsZero() {
			t.Fatalf("after overwrite: %q meta %q expires %v; want the second put whole", v.Value, v.Metadata, v.Expires)
		}
		keys := listAll(t, kv, "", 0)
		if len(keys) != 1 || keys[0].Name != "k" || keys[0].Metadata != "" {
			t.Fatalf("list after overwrite: %+v", keys)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		kv := fresh(t)
		mustPut(t, kv, "a", "1", function.KVPut{})
		mustPut(t, kv, "b", "2", function.KVPut{TTL: time.Hour})
		for _, k := range []string{"a", "b"} {
			if err := kv.Delete(ctx, k); err != nil {
				t.Fatal(err)
			}
			if _, ok, err := kv.Get(ctx, k); ok || err != nil {
				t.Fatalf("%s after delete: ok=%v err=%v", k, ok, err)
			}
		}
		if keys := listAll(t, kv, "", 0); len(keys) != 0 {
			t.Fatalf("list after delete: %+v", keys)
		}
		mustPut(t, kv, "a", "again", function.KVPut{})
		if v := mustGet(t, kv, "a"); string(v.Value) != "again" {
			t.Fatalf("put after delete: %q", v.Value)
		}
	})

	t.Run("TTL", func(t *testing.T) {
		kv := fresh(t)
		before := time.Now()
		mustPut(t, kv, "short", "s", function.KVPut{TTL: h.ttl, Metadata: `1`})
		mustPut(t, kv, "kept", "k", function.KVPut{TTL: h.ttl})
		mustPut(t, kv, "kept", "k2", function.KVPut{}) // a put without a TTL clears it
		mustPut(t, kv, "long", "l", function.KVPut{TTL: 1000 * h.ttl})
		mustPut(t, kv, "forever", "f", function.KVPut{})
		v := mustGet(t, kv, "short")
		if want := before.Add(h.ttl); v.Expires.Before(want.Add(-time.Second)) || v.Expires.After(want.Add(5*time.Second)) {
			t.Fatalf("Expires = %v, want about %v", v.Expires, want)
		}
		keys := listAll(t, kv, "", 0)
		if names(keys) != "forever,kept,long,short" {
			t.Fatalf("list before expiry: %s", names(keys))
		}
		if keys[3].Expires != v.Expires || keys[3].Metadata != "1" {
			t.Fatalf("listed short: %+v, want Expires %v and its metadata", keys[3], v.Expires)
		}
		h.wait()
		if _, ok, err := kv.Get(ctx, "short"); ok || err != nil {
			t.Fatalf("expired key: ok=%v err=%v, want it gone", ok, err)
		}
		for _, k := range []string{"kept", "long", "forever"} {
			mustGet(t, kv, k)
		}
		if got := names(listAll(t, kv, "", 0)); got != "forever,kept,long" {
			t.Fatalf("list after expiry: %s", got)
		}
		// A write after expiry reclaims what it can; the key can be put again.
		mustPut(t, kv, "short", "back", function.KVPut{})
		if v := mustGet(t, kv, "short"); string(v.Value) != "back" || !v.Expires.IsZero() {
			t.Fatalf("re-put after expiry: %q %v", v.Value, v.Expires)
		}
	})

	t.Run("ListOrderPrefixCursor", func(t *testing.T) {
		kv := fresh(t)
		const n = MaxListLimit + 203
		var want []string
		for i := range n {
			want = append(want, fmt.Sprintf("item/%05d", i))
		}
		order := slices.Clone(want)
		rand.New(rand.NewSource(1)).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, k := range order {
			mustPut(t, kv, k, "v", function.KVPut{Metadata: `"` + k + `"`})
		}
		for _, k := range []string{"item", "itel", "iten/x", "j", "é", "z", "a b"} {
			mustPut(t, kv, k, "v", function.KVPut{})
		}

		// The default limit is the maximum; the cursor takes up where the page ended.
		page, next, err := kv.List(ctx, "item/", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) != MaxListLimit || next == "" {
			t.Fatalf("first page: %d keys, next %q; want %d and a cursor", len(page), next, MaxListLimit)
		}
		rest, next2, err := kv.List(ctx, "item/", next, 5000)
		if err != nil {
			t.Fatal(err)
		}
		if len(rest) != n-MaxListLimit || next2 != "" {
			t.Fatalf("second page: %d keys, next %q; want %d and no cursor", len(rest), next2, n-MaxListLimit)
		}
		got := append(page, rest...)
		for i, k := range got {
			if k.Name != want[i] || k.Metadata != `"`+want[i]+`"` {
				t.Fatalf("key %d = %+v, want %s with its metadata", i, k, want[i])
			}
		}

		// Small pages add up to the same list.
		var small []string
		cursor := ""
		for pages := 0; ; pages++ {
			p, c, err := kv.List(ctx, "item/0", cursor, 97)
			if err != nil {
				t.Fatal(err)
			}
			if len(p) > 97 || (c != "" && len(p) != 97) {
				t.Fatalf("page %d: %d keys, cursor %q", pages, len(p), c)
			}
			for _, k := range p {
				small = append(small, k.Name)
			}
			if c == "" {
				break
			}
			if pages > n {
				t.Fatal("paging does not end")
			}
			cursor = c
		}
		if !slices.Equal(small, want) {
			t.Fatalf("paged by 97: %d keys, want %d in order", len(small), len(want))
		}

		// Byte order of UTF-8 (code-point order), over the whole namespace.
		all := listAll(t, kv, "", 0)
		var allNames []string
		for _, k := range all {
			allNames = append(allNames, k.Name)
		}
		if !slices.IsSorted(allNames) || len(allNames) != n+7 {
			t.Fatalf("whole list: %d keys, sorted %v", len(allNames), slices.IsSorted(allNames))
		}
		if allNames[0] != "a b" || allNames[len(allNames)-1] != "é" {
			t.Fatalf("first and last: %q %q", allNames[0], allNames[len(allNames)-1])
		}
		if got := names(listAll(t, kv, "ite", 0)[:3]); got != "itel,item,item/00000" {
			t.Fatalf("prefix ite: %s", got)
		}
		if got := listAll(t, kv, "nothing", 0); len(got) != 0 {
			t.Fatalf("prefix without keys: %+v", got)
		}
		// A cursor from another prefix's list only moves the start.
		_, jc, err := kv.List(ctx, "", "", 1) // cursor after "a b"
		if err != nil {
			t.Fatal(err)
		}
		if p, _, err := kv.List(ctx, "j", jc, 10); err != nil || names(p) != "j" {
			t.Fatalf("prefix j with an earlier cursor: %s %v", names(p), err)
		}
	})

	t.Run("Isolation", func(t *testing.T) {
		a, b := h.ns(t.Name()+"-a"), h.ns(t.Name()+"-b")
		mustPut(t, a, "shared", "A", function.KVPut{})
		mustPut(t, b, "shared", "B", function.KVPut{})
		mustPut(t, a, "only-a", "A", function.KVPut{})
		if v := mustGet(t, a, "shared"); string(v.Value) != "A" {
			t.Fatalf("a sees %q", v.Value)
		}
		if v := mustGet(t, b, "shared"); string(v.Value) != "B" {
			t.Fatalf("b sees %q", v.Value)
		}
		if _, ok, _ := b.Get(ctx, "only-a"); ok {
			t.Fatal("b sees a's key")
		}
		if got := names(listAll(t, b, "", 0)); got != "shared" {
			t.Fatalf("b lists %s", got)
		}
		if err := b.Delete(ctx, "only-a"); err != nil {
			t.Fatal(err)
		}
		mustGet(t, a, "only-a")

		// Separators in names: function "f" with key "x:k" is not function "f:x" with key "k".
		f, fx := h.ns(t.Name()+"-f"), h.ns(t.Name()+"-f:x")
		mustPut(t, f, "x:k", "from f", function.KVPut{})
		if _, ok, _ := fx.Get(ctx, "k"); ok {
			t.Fatal(`function "f:x" reads function "f"'s key "x:k"`)
		}
		mustPut(t, fx, "k", "from f:x", function.KVPut{})
		if v := mustGet(t, f, "x:k"); string(v.Value) != "from f" {
			t.Fatalf(`"f" key "x:k" = %q`, v.Value)
		}
		if got := names(listAll(t, f, "", 0)); got != "x:k" {
			t.Fatalf(`"f" lists %s`, got)
		}
	})

	t.Run("SpecialCharacters", func(t *testing.T) {
		kv := fresh(t)
		keys := []string{":", "a:b", "*", "a*", "%", "%25", "?", "[ab]", `\`, "a b", "line\nbreak", "é", "日本", "../x", "."}
		for i, k := range keys {
			mustPut(t, kv, k, fmt.Sprint(i), function.KVPut{})
		}
		for i, k := range keys {
			if v := mustGet(t, kv, k); string(v.Value) != fmt.Sprint(i) {
				t.Fatalf("key %q = %q, want %d", k, v.Value, i)
			}
		}
		// Prefixes are literal: no glob, no LIKE pattern.
		for prefix, want := range map[string]string{"*": "*", "a": "a b,a*,a:b", "%": "%,%25", "[": "[ab]", "?": "?", `\`: `\`} {
			if got := names(listAll(t, kv, prefix, 0)); got != want {
				t.Errorf("prefix %q lists %s, want %s", prefix, got, want)
			}
		}
	})

	t.Run("Limits", func(t *testing.T) {
		kv := fresh(t)
		max := strings.Repeat("k", MaxKeyBytes)
		mustPut(t, kv, max, "at the limit", function.KVPut{Metadata: `"` + strings.Repeat("m", MaxMetadataBytes-2) + `"`})
		mustGet(t, kv, max)
		if err := kv.Put(ctx, "big", make([]byte, h.maxValue), function.KVPut{}); err != nil {
			t.Fatalf("a value at the limit: %v", err)
		}
		for _, c := range []struct {
			name    string
			err     error
			key     string
			value   []byte
			opts    function.KVPut
			mention string
		}{
			{"empty key", ErrKeyEmpty, "", nil, function.KVPut{}, "empty"},
			{"long key", ErrKeyTooLong, max + "k", nil, function.KVPut{}, "513 bytes, the limit is 512"},
			{"NUL in key", ErrKeyInvalid, "a\x00b", nil, function.KVPut{}, "NUL"},
			{"invalid UTF-8", ErrKeyInvalid, "a\xffb", nil, function.KVPut{}, "UTF-8"},
			{"big value", ErrValueTooLarge, "v", make([]byte, h.maxValue+1), function.KVPut{}, fmt.Sprintf("the limit is %d", h.maxValue)},
			{"big metadata", ErrMetadataTooLarge, "m", nil, function.KVPut{Metadata: `"` + strings.Repeat("m", MaxMetadataBytes-1) + `"`}, "1025 bytes, the limit is 1024"},
			{"metadata not JSON", ErrMetadataInvalid, "m", nil, function.KVPut{Metadata: "{not json"}, "JSON"},
			{"negative TTL", ErrTTLInvalid, "t", nil, function.KVPut{TTL: -time.Second}, "negative"},
		} {
			err := kv.Put(ctx, c.key, c.value, c.opts)
			if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.mention) {
				t.Errorf("%s: Put error %v, want %v mentioning %q", c.name, err, c.err, c.mention)
			}
			if c.key != "v" && c.key != "m" && c.key != "t" {
				if _, _, err := kv.Get(ctx, c.key); !errors.Is(err, c.err) {
					t.Errorf("%s: Get error %v, want %v", c.name, err, c.err)
				}
				if err := kv.Delete(ctx, c.key); !errors.Is(err, c.err) {
					t.Errorf("%s: Delete error %v, want %v", c.name, err, c.err)
				}
			}
		}
		if got := names(listAll(t, kv, "", 0)); got != "big,"+max {
			t.Fatalf("refused puts stored something: %s", got)
		}
		if _, _, err := kv.List(ctx, "", "not a cursor!", 10); !errors.Is(err, ErrCursorInvalid) {
			t.Errorf("List with a bad cursor: %v", err)
		}
		if _, _, err := kv.List(ctx, max+"k", "", 10); !errors.Is(err, ErrKeyTooLong) {
			t.Errorf("List with a long prefix: %v", err)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		kv := fresh(t)
		const workers, rounds = 8, 40
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range rounds {
					own := fmt.Sprintf("w%d", w)
					val := fmt.Sprintf("%d-%d", w, i)
					if err := kv.Put(ctx, own, []byte(val), function.KVPut{}); err != nil {
						errs <- err
						return
					}
					if err := kv.Put(ctx, "hot", []byte(val), function.KVPut{}); err != nil {
						errs <- err
						return
					}
					v, ok, err := kv.Get(ctx, own)
					if err != nil || !ok || string(v.Value) != val {
						errs <- fmt.Errorf("worker %d read %q %v %v, want %q", w, v.Value, ok, err, val)
						return
					}
					if _, ok, err := kv.Get(ctx, "hot"); err != nil || !ok {
						errs <- fmt.Errorf("hot: %v %v", ok, err)
						return
					}
					if _, _, err := kv.List(ctx, "w", "", 3); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		keys := listAll(t, kv, "", 0)
		if len(keys) != workers+1 {
			t.Fatalf("%d keys after the race, want %d", len(keys), workers+1)
		}
		for w := range workers {
			if v := mustGet(t, kv, fmt.Sprintf("w%d", w)); string(v.Value) != fmt.Sprintf("%d-%d", w, rounds-1) {
				t.Errorf("w%d = %q, want its last put", w, v.Value)
			}
		}
		if v := mustGet(t, kv, "hot"); !strings.HasSuffix(string(v.Value), fmt.Sprintf("-%d", rounds-1)) {
			t.Errorf("hot = %q, want some worker's last put", v.Value)
		}
	})
}

func mustPut(t *testing.T, kv function.KV, key, value string, opts function.KVPut) {
	t.Helper()
	if err := kv.Put(context.Background(), key, []byte(value), opts); err != nil {
		t.Fatalf("Put %q: %v", key, err)
	}
}

func mustGet(t *testing.T, kv function.KV, key string) function.KVValue {
	t.Helper()
	v, ok, err := kv.Get(context.Background(), key)
	if err != nil || !ok {
		t.Fatalf("Get %q: ok=%v err=%v", key, ok, err)
	}
	return v
}

// listAll follows the cursor to the end.
func listAll(t *testing.T, kv function.KV, prefix string, limit int) []function.KVKey {
	t.Helper()
	var all []function.KVKey
	cursor := ""
	for {
		keys, next, err := kv.List(context.Background(), prefix, cursor, limit)
		if err != nil {
			t.Fatalf("List %q: %v", prefix, err)
		}
		all = append(all, keys...)
		if next == "" {
			return all
		}
		cursor = next
	}
}

func names(keys []function.KVKey) string {
	var s []string
	for _, k := range keys {
		s = append(s, k.Name)
	}
	return strings.Join(s, ",")
}
