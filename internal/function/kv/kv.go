// Package kv is the key-value store behind an edge function's env.KV (function.KV), with
// the semantics users know from Cloudflare Workers KV: get, put, delete and an ordered list
// with a prefix, a cursor and a limit; a TTL and a JSON metadata string per key; limits on
// the sizes of keys, values and metadata.
//
// A store belongs to one project and hands out one namespace per function: a function can
// never read or list another's keys. Two backends share the semantics, and one conformance
// suite checks them both:
//
//   - Store: one SQLite file per project (WAL), for a single gateway process;
//   - Redis: one Redis server shared by several gateway replicas.
//
// Keys are non-empty UTF-8 strings of at most 512 bytes, without a NUL byte; anything else
// (":", "*", "%", "/", spaces, newlines) is an ordinary character. Lists are in byte order of
// the keys' UTF-8, which is code-point order. An expired key is invisible at once and its
// storage is reclaimed later, in bounded batches.
package kv

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"apoxy.dev/apoxy/internal/function"
)

// Limits of Workers KV that are not configurable here: they are part of the semantics a
// function is written against.
const (
	// MaxKeyBytes bounds a key's length in bytes.
	MaxKeyBytes = 512
	// MaxMetadataBytes bounds a key's metadata (a JSON string) in bytes.
	MaxMetadataBytes = 1024
	// MaxListLimit is the most keys one List returns, and the default when the limit
	// asked for is zero or less.
	MaxListLimit = 1000
	// DefaultMaxValueBytes is the default bound on a value (25 MiB, as Workers KV).
	DefaultMaxValueBytes = 25 << 20
)

// Errors of a call that the store refused before doing anything. Each is returned wrapped,
// with a message naming the limit and what was given; test with errors.Is.
var (
	ErrKeyEmpty         = errors.New("kv: the key is empty")
	ErrKeyTooLong       = errors.New("kv: key too long")
	ErrKeyInvalid       = errors.New("kv: invalid key")
	ErrValueTooLarge    = errors.New("kv: value too large")
	ErrMetadataTooLarge = errors.New("kv: metadata too large")
	ErrMetadataInvalid  = errors.New("kv: metadata is not JSON")
	ErrTTLInvalid       = errors.New("kv: invalid TTL")
	ErrCursorInvalid    = errors.New("kv: invalid cursor")
	// ErrClosed is returned by a namespace whose store was closed.
	ErrClosed = errors.New("kv: store closed")
)

// Option configures a store.
type Option func(*options)

type options struct {
	maxValueBytes int64
	now           func() time.Time
	purgeEvery    time.Duration
}

func newOptions(opts []Option) options {
	o := options{maxValueBytes: DefaultMaxValueBytes, now: time.Now, purgeEvery: time.Minute}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// WithMaxValueBytes bounds a value's size (default 25 MiB); n ≤ 0 keeps the default.
func WithMaxValueBytes(n int64) Option {
	return func(o *options) {
		if n > 0 {
			o.maxValueBytes = n
		}
	}
}

// WithClock makes now the SQLite store's clock, for expiry: tests move time instead of
// sleeping. (Redis expires keys by its own clock and ignores this.)
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithPurgeInterval is how often the SQLite store deletes expired rows in the background
// (default one minute); d < 0 turns the timer off, leaving Purge to the caller.
func WithPurgeInterval(d time.Duration) Option {
	return func(o *options) {
		if d != 0 {
			o.purgeEvery = d
		}
	}
}

// checkKey refuses a key a namespace cannot hold.
func checkKey(key string) error {
	if key == "" {
		return ErrKeyEmpty
	}
	if len(key) > MaxKeyBytes {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrKeyTooLong, len(key), MaxKeyBytes)
	}
	return checkChars("key", key)
}

// checkChars refuses invalid UTF-8 (a key must round-trip through a JavaScript string) and
// NUL (it truncates keys in C tools such as redis-cli and the sqlite3 shell).
func checkChars(what, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: the %s is not valid UTF-8", ErrKeyInvalid, what)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%w: the %s contains a NUL byte", ErrKeyInvalid, what)
	}
	return nil
}

// checkPut refuses a Put over the limits.
func checkPut(key string, value []byte, opts function.KVPut, maxValue int64) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if int64(len(value)) > maxValue {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrValueTooLarge, len(value), maxValue)
	}
	if len(opts.Metadata) > MaxMetadataBytes {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrMetadataTooLarge, len(opts.Metadata), MaxMetadataBytes)
	}
	if opts.Metadata != "" && !json.Valid([]byte(opts.Metadata)) {
		return ErrMetadataInvalid
	}
	if opts.TTL < 0 {
		return fmt.Errorf("%w: %v is negative", ErrTTLInvalid, opts.TTL)
	}
	return nil
}

// ttlMillis is a TTL in whole milliseconds, rounded up so that a positive TTL never means
// "no expiry".
func ttlMillis(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// listArgs checks a List's prefix and cursor and returns the key to start after ("": from
// the prefix) and the page size.
func listArgs(prefix, cursor string, limit int) (after string, n int, err error) {
	if len(prefix) > MaxKeyBytes {
		return "", 0, fmt.Errorf("%w: the prefix is %d bytes, the limit is %d", ErrKeyTooLong, len(prefix), MaxKeyBytes)
	}
	if err := checkChars("prefix", prefix); err != nil {
		return "", 0, err
	}
	if cursor != "" {
		if after, err = decodeCursor(cursor); err != nil {
			return "", 0, err
		}
	}
	if limit <= 0 || limit > MaxListLimit {
		limit = MaxListLimit
	}
	return after, limit, nil
}

// A cursor is the last key of a page, encoded so that callers treat it as opaque (and can
// put it in a URL).
func encodeCursor(lastKey string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(lastKey))
}

func decodeCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) == 0 || len(b) > MaxKeyBytes || !utf8.Valid(b) {
		return "", fmt.Errorf("%w: %q was not returned by List", ErrCursorInvalid, c)
	}
	return string(b), nil
}

// prefixEnd is an upper bound, exclusive, of the keys with the prefix: keys are valid
// UTF-8, which never holds the byte 0xff, so every key with the prefix sorts before it and
// every other key at or after the prefix sorts after it.
func prefixEnd(prefix string) string { return prefix + "\xff" }
