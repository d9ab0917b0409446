// Package function is what the gateway asks of an edge-function runtime, whatever the
// language: load a built revision (a bundled JavaScript module, a WebAssembly module), then
// invoke it on requests, lending each invocation only the capabilities its revision was
// given (outbound fetch, a key-value store, a log). The runtimes live in sub-packages
// (function/wasm: wazero with the http-wasm handler ABI, for raw Wasm and Go compiled to
// wasip1; function/js: QuickJS with a Workers-compatible surface). The data plane sees only
// these types, so a runtime is an addition, not a branch in the request path.
package function

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// Mode says where a function sits on a route: a filter runs before the backend (it may
// answer, or pass the request on, edited); a backend answers every request itself.
type Mode string

const (
	ModeFilter  Mode = "filter"
	ModeBackend Mode = "backend"
)

// Request is what a function sees of a request. A filter's edits to Method, URL and Header
// are what goes on to the backend when it passes.
type Request struct {
	Method string
	// URL holds the path and query (RequestURI form); Host is the authority.
	URL    *url.URL
	Host   string
	Header http.Header
	// Body is the request body (nil: none). A runtime reads at most Limits.MaxBodyBytes of it.
	Body io.Reader
	// RemoteAddr is the client's address (ip:port).
	RemoteAddr string
	// Proto is "HTTP/1.1", "HTTP/2.0" or "HTTP/3.0".
	Proto string
}

// Result is a function's answer to one request.
type Result struct {
	// Pass: a filter lets the request go on to the backend, as Request now reads. When
	// false, Status, Header and Body are the response.
	Pass   bool
	Status int
	Header http.Header
	Body   []byte
	// BodyStream, when set, is the body instead of Body: the function makes it as the client
	// reads it (a JS ReadableStream). The caller reads it to the end, or closes it to stop the
	// function (the client went away); a Read error means the function failed mid-body.
	BodyStream io.ReadCloser
	// Response, when set on a passing filter, lets the function see and edit the upstream's
	// response head (status and headers) before it is sent. The caller calls it exactly
	// once: with the response, or with failed true when there is none (an upstream error).
	// The invocation's instance is held until then.
	Response func(ctx context.Context, status *int, header http.Header, failed bool) error
}

// Host is what the gateway lends one invocation: the capabilities of its revision. A nil
// field is a capability the revision was not given; using it fails in the function (a
// thrown error, a trap), never in the gateway.
type Host struct {
	// Fetch makes an outbound HTTP request through the gateway's upstream client. The
	// invocation's limits on count and bytes are applied by the runtime.
	Fetch func(ctx context.Context, req *http.Request) (*http.Response, error)
	// KV is the function's own key-value namespace.
	KV KV
	// Log receives console.log and friends (and the runtime's own errors) for `apoxy logs`.
	Log func(level slog.Level, msg string)
	// Env are the revision's environment variables (spec.template.env).
	Env map[string]string
}

// KV is a function's key-value namespace (Workers KV semantics: eventually consistent
// reads are fine, values up to a size limit, an optional TTL and metadata per key).
type KV interface {
	Get(ctx context.Context, key string) (v KVValue, ok bool, err error)
	Put(ctx context.Context, key string, value []byte, opts KVPut) error
	Delete(ctx context.Context, key string) error
	// List returns keys with the prefix in order, at most limit, starting after cursor;
	// next is "" when there are no more.
	List(ctx context.Context, prefix, cursor string, limit int) (keys []KVKey, next string, err error)
}

// KVValue is a stored value with its metadata.
type KVValue struct {
	Value    []byte
	Metadata string // JSON, as given to Put ("" none)
	Expires  time.Time
}

// KVPut are the options of a Put.
type KVPut struct {
	TTL      time.Duration // 0: never expires
	Metadata string
}

// KVKey is one key of a List.
type KVKey struct {
	Name     string
	Metadata string
	Expires  time.Time
}

// Limits bound one revision's instances and invocations.
type Limits struct {
	// Timeout preempts an invocation (loops, never-settling promises, blocked host calls).
	Timeout time.Duration
	// MemoryBytes caps one instance's memory (JS heap, Wasm linear memory).
	MemoryBytes int64
	// MaxInstances bounds the instances of a revision (concurrent invocations); more wait.
	MaxInstances int
	// MaxFetches and MaxFetchBytes bound outbound fetches per invocation (count, response
	// bytes read).
	MaxFetches    int
	MaxFetchBytes int64
	// MaxBodyBytes bounds the request and response bodies a function reads or writes.
	MaxBodyBytes int64
}

// DefaultLimits are the limits when a revision sets none.
var DefaultLimits = Limits{Timeout: 30 * time.Second, MemoryBytes: 64 << 20, MaxInstances: 16,
	MaxFetches: 50, MaxFetchBytes: 16 << 20, MaxBodyBytes: 8 << 20}

// Function is a loaded revision, ready to serve. It is safe for concurrent use: each
// invocation runs on an instance of its own from a pool.
type Function interface {
	Invoke(ctx context.Context, req *Request, host *Host) (*Result, error)
	// Close frees every instance; invocations in flight end with ErrClosed.
	Close() error
}

// Errors an invocation ends with. Each is a 5xx for the client, logged with the function and
// revision; the instance that ran it is discarded.
var (
	ErrTimeout  = errors.New("function: timed out")
	ErrMemory   = errors.New("function: out of memory")
	ErrClosed   = errors.New("function: revision unloaded")
	ErrNoFetch  = errors.New("function: fetch is not enabled (spec.template.runtime.capabilities.fetchAPI)")
	ErrNoKV     = errors.New("function: kv is not enabled (spec.template.runtime.capabilities.kv)")
	ErrTooLarge = errors.New("function: body over the limit")
)

// WithDefaults returns l with its zero (or negative) fields taken from DefaultLimits, so every
// runtime reads a revision's limits the same way.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits
	if l.Timeout <= 0 {
		l.Timeout = d.Timeout
	}
	if l.MemoryBytes <= 0 {
		l.MemoryBytes = d.MemoryBytes
	}
	if l.MaxInstances <= 0 {
		l.MaxInstances = d.MaxInstances
	}
	if l.MaxFetches <= 0 {
		l.MaxFetches = d.MaxFetches
	}
	if l.MaxFetchBytes <= 0 {
		l.MaxFetchBytes = d.MaxFetchBytes
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = d.MaxBodyBytes
	}
	return l
}
