// Package source fetches the code of an EdgeFunction from where its spec says it lives: a Git
// repository, an npm package, an OCI artifact or a WebAssembly module at a URL. The build
// controller calls it, then bundles or compiles what it returns; inline assets need no fetching
// and are not handled here.
//
// Every fetch is bounded in size (Fetcher.MaxBytes) and honours its context. Errors are written
// for the person reading an EdgeFunction's status: they start with the source ("git:", "npm:",
// "oci:", "url:"), name what was asked for and say why it failed. Each also matches one of the
// sentinel errors (ErrNotFound, ErrIntegrity, ...) with errors.Is, so a caller can tell a
// transient failure (ErrUnreachable) from one that retrying will not fix.
package source

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// DefaultMaxBytes bounds one fetch when Fetcher.MaxBytes is zero.
const DefaultMaxBytes = 64 << 20

// Sentinel errors: every error this package returns matches exactly one of them with errors.Is.
var (
	// ErrNotFound: the repository, ref, path, package, version, tag or URL does not exist.
	ErrNotFound = errors.New("not found")
	// ErrIntegrity: the content differs from the digest or integrity it was checked against.
	ErrIntegrity = errors.New("integrity check failed")
	// ErrTooLarge: the source is larger than Fetcher.MaxBytes.
	ErrTooLarge = errors.New("too large")
	// ErrUnreachable: the host could not be reached, answered with a server error or took
	// too long, or the context ended; retrying later may succeed.
	ErrUnreachable = errors.New("unreachable")
	// ErrDenied: the server refused the credentials (or asked for some).
	ErrDenied = errors.New("access denied")
	// ErrInvalid: the request or the content is malformed or unsafe (a bad URL, a tarball entry
	// leaving the package, a file that is not WebAssembly, a source kind not supported).
	ErrInvalid = errors.New("invalid source")
)

// Fetcher fetches function sources. The zero value is usable; a Fetcher is safe for concurrent
// use as long as its fields are not changed.
type Fetcher struct {
	// HTTPClient makes the HTTP requests of npm, URL, Git over HTTP(S) and OCI fetches (OCI
	// uses only its Transport, so its Timeout does not bound those; the context does). Nil
	// means a client with connect, TLS and header timeouts and a 5-minute overall bound.
	HTTPClient *http.Client
	// MaxBytes bounds the total size of any one fetch (a packument, a tarball and its
	// contents, a Git pack and its files, a module). Zero means DefaultMaxBytes. A larger
	// source fails with ErrTooLarge rather than filling memory.
	MaxBytes int64
	// AllowFile lets Git fetch file:// repositories, which reads the local disk of the process;
	// it is off by default because a function's author must not read another tenant's
	// repositories on the controller's host.
	AllowFile bool

	// maxFileBytes is the size above which a Git file is skipped (0: defaultMaxGitFileBytes);
	// tests lower it.
	maxFileBytes int64
}

// defaultClient is the HTTP client used when Fetcher.HTTPClient is nil.
var defaultClient = &http.Client{
	Timeout: 5 * time.Minute,
	Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          16,
		ForceAttemptHTTP2:     true,
	},
}

func (f *Fetcher) client() *http.Client {
	if f != nil && f.HTTPClient != nil {
		return f.HTTPClient
	}
	return defaultClient
}

// boundedClient is f.client() with every response body bounded by MaxBytes (plus room for
// framing), for protocols whose bodies are read by a library rather than by readAll: a
// server that never stops sending then fails with ErrTooLarge instead of filling memory.
func (f *Fetcher) boundedClient(what string) *http.Client {
	c := *f.client()
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	max := f.maxBytes()
	c.Transport = &boundedBodies{rt: rt, max: max + max/64 + 1<<20, what: what}
	return &c
}

// boundedBodies is a RoundTripper whose response bodies fail past max bytes.
type boundedBodies struct {
	rt   http.RoundTripper
	max  int64
	what string
}

func (b *boundedBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := b.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{newLimitedReader(resp.Body, b.max, b.what), resp.Body}
	return resp, nil
}

func (f *Fetcher) maxBytes() int64 {
	if f != nil && f.MaxBytes > 0 {
		return f.MaxBytes
	}
	return DefaultMaxBytes
}

// Error is a failed fetch. Its message is complete and meant for a user; Unwrap yields its
// sentinel (ErrNotFound, ...) and, when there is one, the underlying error.
type Error struct {
	msg   string
	kind  error
	cause error
}

func (e *Error) Error() string { return e.msg }

// Unwrap returns the sentinel and the cause, for errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// fail makes an *Error of the given kind; the message is formatted from format and args.
func fail(kind, cause error, format string, args ...any) error {
	return &Error{msg: fmt.Sprintf(format, args...), kind: kind, cause: cause}
}

// transportError turns an error from talking to a server into an *Error: the context's own
// error when ctx is done, else unreachable (naming host) for network failures, else invalid.
// what is the message prefix, e.g. "npm: fetching left-pad from https://registry.npmjs.org".
func transportError(ctx context.Context, err error, what, host string) error {
	var se *Error
	if errors.As(err, &se) {
		return err
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fail(ErrUnreachable, ctxErr, "%s: %v", what, ctxErr)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fail(ErrUnreachable, err, "%s: timed out talking to %s", what, host)
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return fail(ErrDenied, err, "%s: the TLS certificate of %s is not trusted: %v", what, host, certErr.Err)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fail(ErrUnreachable, err, "%s: cannot resolve host %s", what, host)
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fail(ErrUnreachable, err, "%s: cannot reach %s: connection refused", what, host)
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		if netErr.Timeout() {
			return fail(ErrUnreachable, err, "%s: timed out talking to %s", what, host)
		}
		return fail(ErrUnreachable, err, "%s: cannot reach %s: %v", what, host, rootCause(err))
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		return fail(ErrUnreachable, err, "%s: connection to %s failed: %v", what, host, rootCause(err))
	}
	return fail(ErrInvalid, err, "%s: %v", what, err)
}

// rootCause is the innermost error of a chain of single wraps, whose text is the most precise
// (the URL and operation around it are already in our message).
func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// redactURL is u without credentials, query or fragment, fit for an error message: presigned
// URLs carry secrets in their query.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		// Not a URL (git@host:path); drop anything before an @ that looks like user:password.
		if at := strings.LastIndex(raw, "@"); at >= 0 && strings.Contains(raw[:at], ":") {
			return "***@" + raw[at+1:]
		}
		return raw
	}
	// A user name alone may be a token (https://TOKEN@github.com/...): drop all of it.
	u.User = nil
	u.RawQuery = ""
	u.ForceQuery = false
	u.Fragment = ""
	return u.String()
}

// limitedReader reads at most n bytes from r and then fails with an ErrTooLarge error naming
// what: unlike io.LimitReader it tells a source that is exactly n bytes from a larger one.
type limitedReader struct {
	r    io.Reader
	n    int64 // bytes still allowed
	max  int64
	what string
}

func newLimitedReader(r io.Reader, max int64, what string) *limitedReader {
	return &limitedReader{r: r, n: max, max: max, what: what}
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		// Probe for one more byte: at the limit exactly, EOF is fine.
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			return 0, tooLarge(l.what, l.max)
		}
		return 0, err
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// tooLarge is the ErrTooLarge error for what, which exceeded max bytes.
func tooLarge(what string, max int64) error {
	return fail(ErrTooLarge, nil, "%s is larger than the limit of %s", what, formatBytes(max))
}

// formatBytes prints n in the largest binary unit that divides it, else in bytes.
func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}

// readAll reads r to its end, failing with ErrTooLarge (naming what) past max bytes.
func readAll(r io.Reader, max int64, what string) ([]byte, error) {
	return io.ReadAll(newLimitedReader(r, max, what))
}

// wasmMagic starts every WebAssembly binary module.
var wasmMagic = []byte("\x00asm")

// describeStart quotes the first bytes of b, to say what a file that should be WebAssembly
// looks like instead (an HTML error page, a gzip stream, ...).
func describeStart(b []byte) string {
	if len(b) > 16 {
		b = b[:16]
	}
	return fmt.Sprintf("%q", b)
}
