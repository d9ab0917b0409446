//go:build wasip1

package edgefunc

import (
	"errors"
	"io"
	"strings"
)

// Handler handles one request. It returns true to pass the request on (a filter: the next
// handler sees it as edited) and false when it answered through w.
type Handler func(w ResponseWriter, r *Request) bool

var handler Handler

// Handle makes h the function's handler. Call it from an init function: the gateway calls
// handle_request once the module is initialised, and main is never run.
func Handle(h Handler) {
	handler = h
}

// Request is the request being handled. Its setters edit what the next handler receives.
type Request struct{}

// Method is the request method.
func (*Request) Method() string { return getString(getMethod) }

// SetMethod changes the request method.
func (*Request) SetMethod(m string) { setMethod(sptr(m)) }

// URI is the request target: path and query.
func (*Request) URI() string { return getString(getURI) }

// SetURI changes the request target (path and query).
func (*Request) SetURI(uri string) { setURI(sptr(uri)) }

// Proto is the protocol version, as "HTTP/1.1".
func (*Request) Proto() string { return getString(getProtocolVersion) }

// RemoteAddr is the client's address, ip:port.
func (*Request) RemoteAddr() string { return getString(getSourceAddr) }

// Header is the first value of the request header name ("" when absent).
func (r *Request) Header(name string) string {
	if v := headerValues(kindRequest, name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// HeaderValues are every value of the request header name.
func (*Request) HeaderValues(name string) []string { return headerValues(kindRequest, name) }

// HeaderNames are the names of the request's headers.
func (*Request) HeaderNames() []string { return headerNames(kindRequest) }

// SetHeader replaces the values of the request header name.
func (*Request) SetHeader(name, value string) { setHeader(kindRequest, name, value) }

// AddHeader adds a value to the request header name.
func (*Request) AddHeader(name, value string) { addHeader(kindRequest, name, value) }

// DelHeader removes the request header name.
func (*Request) DelHeader(name string) { delHeader(kindRequest, name) }

// Body reads the whole request body (at most the gateway's body limit; over it the
// invocation fails). A filter that passes still forwards the body.
func (*Request) Body() []byte {
	var out []byte
	for {
		r := readBody(kindRequest, ptr(scratch), uint32(len(scratch)))
		n := uint32(r)
		out = append(out, scratch[:n]...)
		if r>>32 == 1 {
			return out
		}
	}
}

// SetBody replaces the request body the next handler receives.
func (*Request) SetBody(b []byte) {
	if len(b) == 0 {
		writeBody(kindRequest, 0, 0)
		return
	}
	writeBody(kindRequest, ptr(b), uint32(len(b)))
}

// ResponseWriter is the response of a handler that answers (returns false).
type ResponseWriter interface {
	io.Writer
	// WriteHeader sets the status code (200 when never called).
	WriteHeader(status int)
	// SetHeader replaces the values of a response header; AddHeader adds one; DelHeader
	// removes the header.
	SetHeader(name, value string)
	AddHeader(name, value string)
	DelHeader(name string)
}

type responseWriter struct{}

func (responseWriter) WriteHeader(status int)       { setStatusCode(uint32(status)) }
func (responseWriter) SetHeader(name, value string) { setHeader(kindResponse, name, value) }
func (responseWriter) AddHeader(name, value string) { addHeader(kindResponse, name, value) }
func (responseWriter) DelHeader(name string)        { delHeader(kindResponse, name) }
func (responseWriter) Write(b []byte) (int, error) {
	if len(b) > 0 {
		writeBody(kindResponse, ptr(b), uint32(len(b)))
	}
	return len(b), nil
}

//go:wasmexport handle_request
func handleRequest() uint64 {
	if handler == nil {
		Log(LevelError, "edgefunc: no handler: call edgefunc.Handle in an init function")
		setStatusCode(500)
		return 0
	}
	if handler(responseWriter{}, &Request{}) {
		return 1
	}
	return 0
}

func headerValues(kind uint32, name string) []string {
	np, nl := sptr(name)
	return getList(func(buf, limit uint32) uint64 { return getHeaderValues(kind, np, nl, buf, limit) })
}

func headerNames(kind uint32) []string {
	return getList(func(buf, limit uint32) uint64 { return getHeaderNames(kind, buf, limit) })
}

func setHeader(kind uint32, name, value string) {
	np, nl := sptr(name)
	vp, vl := sptr(value)
	setHeaderValue(kind, np, nl, vp, vl)
}

func addHeader(kind uint32, name, value string) {
	np, nl := sptr(name)
	vp, vl := sptr(value)
	addHeaderValue(kind, np, nl, vp, vl)
}

func delHeader(kind uint32, name string) {
	np, nl := sptr(name)
	removeHeader(kind, np, nl)
}

// Log levels of the ABI.
const (
	LevelDebug int32 = -1
	LevelInfo  int32 = 0
	LevelWarn  int32 = 1
	LevelError int32 = 2
)

// Log writes a line to the function's log (apoxy logs).
func Log(level int32, msg string) {
	p, n := sptr(msg)
	logMessage(level, p, n)
}

// Config is the function's configuration, as the gateway was given it.
func Config() []byte { return getBytes(getConfig) }

// EnableFeatures asks for http-wasm features (1 buffer the request body, 2 buffer the
// response) and returns those enabled.
func EnableFeatures(f uint64) uint64 { return enableFeatures(f) }

// Errors of the gateway's capabilities.
var (
	// ErrNotEnabled: the revision was not given the capability (fetch, kv).
	ErrNotEnabled = errors.New("edgefunc: capability not enabled")
	ErrNotFound   = errors.New("edgefunc: not found")
	ErrFailed     = errors.New("edgefunc: operation failed")
	ErrLimit      = errors.New("edgefunc: limit reached")
	ErrInvalid    = errors.New("edgefunc: invalid argument")
)

// codeError maps a negative code of the apoxy module to an error.
func codeError(c int64) error {
	switch c {
	case -1:
		return ErrNotEnabled
	case -2:
		return ErrNotFound
	case -4:
		return ErrLimit
	case -5:
		return ErrInvalid
	}
	return ErrFailed
}

// encodeHeaders is a header map as the apoxy module's "name\0value\0" list.
func encodeHeaders(h map[string][]string) []byte {
	var b strings.Builder
	for k, vs := range h {
		for _, v := range vs {
			b.WriteString(k)
			b.WriteByte(0)
			b.WriteString(v)
			b.WriteByte(0)
		}
	}
	return []byte(b.String())
}
