package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"apoxy.dev/apoxy/internal/function"
)

// Header and body kinds of the http-wasm ABI.
const (
	kindRequest          = 0
	kindResponse         = 1
	kindRequestTrailers  = 2
	kindResponseTrailers = 3
)

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// hostFunc is one host function of an import module.
type hostFunc struct {
	name    string
	params  []api.ValueType
	results []api.ValueType
	fn      api.GoModuleFunc
}

// instantiateModule defines module name with funcs in r.
func instantiateModule(ctx context.Context, r wazero.Runtime, name string, funcs []hostFunc) error {
	b := r.NewHostModuleBuilder(name)
	for _, h := range funcs {
		b.NewFunctionBuilder().WithGoModuleFunction(h.fn, h.params, h.results).Export(h.name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// instantiateHTTPHandler defines the http-wasm handler ABI's import module, http_handler.
func instantiateHTTPHandler(ctx context.Context, r wazero.Runtime) error {
	return instantiateModule(ctx, r, "http_handler", []hostFunc{
		{"enable_features", []api.ValueType{i64}, []api.ValueType{i64}, enableFeatures},
		{"get_config", []api.ValueType{i32, i32}, []api.ValueType{i32}, getConfig},
		{"log", []api.ValueType{i32, i32, i32}, nil, logMessage},
		{"log_enabled", []api.ValueType{i32}, []api.ValueType{i32}, logEnabled},
		{"get_method", []api.ValueType{i32, i32}, []api.ValueType{i32}, getMethod},
		{"set_method", []api.ValueType{i32, i32}, nil, setMethod},
		{"get_uri", []api.ValueType{i32, i32}, []api.ValueType{i32}, getURI},
		{"set_uri", []api.ValueType{i32, i32}, nil, setURI},
		{"get_protocol_version", []api.ValueType{i32, i32}, []api.ValueType{i32}, getProtocolVersion},
		{"get_header_names", []api.ValueType{i32, i32, i32}, []api.ValueType{i64}, getHeaderNames},
		{"get_header_values", []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i64}, getHeaderValues},
		{"set_header_value", []api.ValueType{i32, i32, i32, i32, i32}, nil, setHeaderValue},
		{"add_header_value", []api.ValueType{i32, i32, i32, i32, i32}, nil, addHeaderValue},
		{"remove_header", []api.ValueType{i32, i32, i32}, nil, removeHeader},
		{"read_body", []api.ValueType{i32, i32, i32}, []api.ValueType{i64}, readBody},
		{"write_body", []api.ValueType{i32, i32, i32}, nil, writeBody},
		{"get_status_code", nil, []api.ValueType{i32}, getStatusCode},
		{"set_status_code", []api.ValueType{i32}, nil, setStatusCode},
		{"get_source_addr", []api.ValueType{i32, i32}, []api.ValueType{i32}, getSourceAddr},
	})
}

// errMemoryRange traps a guest that passed a buffer outside its memory.
var errMemoryRange = errors.New("wasm: guest buffer out of memory range")

// readGuest is the guest's bytes at (ptr, n): a view of its memory, valid until the guest
// runs again.
func readGuest(mod api.Module, ptr, n uint32) []byte {
	b, ok := mod.Memory().Read(ptr, n)
	if !ok {
		panic(errMemoryRange)
	}
	return b
}

// readString is the guest's string at (ptr, n), copied.
func readString(mod api.Module, ptr, n uint32) string {
	return string(readGuest(mod, ptr, n))
}

// writeIfFits writes data to the guest's (buf, limit) when it fits and returns its length
// either way: a guest seeing a length over its limit grows its buffer and asks again.
func writeIfFits(mod api.Module, buf, limit uint32, data []byte) uint32 {
	if uint64(len(data)) <= uint64(limit) && len(data) > 0 {
		if !mod.Memory().Write(buf, data) {
			panic(errMemoryRange)
		}
	}
	return uint32(len(data))
}

// writeStringIfFits is writeIfFits for a string.
func writeStringIfFits(mod api.Module, buf, limit uint32, s string) uint32 {
	if uint64(len(s)) <= uint64(limit) && len(s) > 0 {
		if !mod.Memory().WriteString(buf, s) {
			panic(errMemoryRange)
		}
	}
	return uint32(len(s))
}

func enableFeatures(ctx context.Context, _ api.Module, stack []uint64) {
	inv := invocationFrom(ctx)
	inv.inst.features |= stack[0] & (featureBufferRequest | featureBufferResponse)
	stack[0] = inv.inst.features
}

func getConfig(ctx context.Context, mod api.Module, stack []uint64) {
	inv := invocationFrom(ctx)
	stack[0] = uint64(writeIfFits(mod, uint32(stack[0]), uint32(stack[1]), inv.f.config))
}

// slogLevel maps an http-wasm log level (-1 debug, 0 info, 1 warn, 2 error, 3 none).
func slogLevel(l int32) (slog.Level, bool) {
	switch {
	case l <= -1:
		return slog.LevelDebug, true
	case l == 0:
		return slog.LevelInfo, true
	case l == 1:
		return slog.LevelWarn, true
	case l == 2:
		return slog.LevelError, true
	}
	return 0, false
}

func logMessage(ctx context.Context, mod api.Module, stack []uint64) {
	inv := invocationFrom(ctx)
	level, ok := slogLevel(int32(stack[0]))
	msg := readString(mod, uint32(stack[1]), uint32(stack[2]))
	if ok {
		inv.log(level, msg)
	}
}

func logEnabled(ctx context.Context, _ api.Module, stack []uint64) {
	inv := invocationFrom(ctx)
	_, ok := slogLevel(int32(stack[0]))
	stack[0] = 0
	if ok && inv.host.Log != nil {
		stack[0] = 1
	}
}

func getMethod(ctx context.Context, mod api.Module, stack []uint64) {
	inv := invocationFrom(ctx)
	stack[0] = uint64(writeStringIfFits(mod, uint32(stack[0]), uint32(stack[1]), inv.req.Method))
}

func setMethod(ctx context.Context, mod api.Module, stack []uint64) {
	inv := invocationFrom(ctx)
	m := readString(mod, uint32(stack[0]), uint32(stack[1]))
	if m == "" || strings.ContainsAny(m, " \t\r\n") {
		inv.abort(fmt.Errorf("wasm: set_method: invalid method %q", m))
	}
	inv.req.Method = m
}

func requestURI(u *url.URL) string {
	if u == nil {
		return "/"
	}
	return u.RequestURI()
}

func getURI(ctx context.Context, mod api.Module, stack []uint64) {
	inv := invocationFrom(ctx)
	stack[0] = uint64(writeStringIfFits(mod, uint32(stack[0]), uint32(stack[1]), requestURI(inv.req.URL)))
}

func setURI(ctx context.Context, mod api.Module, stack []uint64) {
	inv := invocationFrom(ctx)
	s := readString(mod, uint32(stack[0]), uint32(stack[1]))
	if s == "" {
		s = "/"
	}
	u, err := url.ParseRequestURI(s)
	if err != nil {
		inv.abort(fmt.Errorf("wasm: set_uri: %w", err))
	}
	inv.req.URL = u
}

func getProtocolVersion(ctx context.Context, mod api.Module, stack []uint64) {
	inv := invocationFrom(ctx)
	proto := inv.req.Proto
	if proto == "" {
		proto = "HTTP/1.1"
	}
	stack[0] = uint64(writeStringIfFits(mod, uint32(stack[0]), uint32(stack[1]), proto))
}

func getSourceAddr(ctx context.Context, mod api.Module, stack []uint64) {
	inv := invocationFrom(ctx)
	stack[0] = uint64(writeStringIfFits(mod, uint32(stack[0]), uint32(stack[1]), inv.req.RemoteAddr))
}

// headers is the header map of kind; nil for trailers, which read as empty and drop writes.
func (inv *invocation) headers(kind uint32) http.Header {
	switch kind {
	case kindRequest:
		return inv.req.Header
	case kindResponse:
		if inv.phase == phaseResponse {
			return inv.upHeader
		}
		if inv.header == nil {
			inv.header = http.Header{}
		}
		return inv.header
	case kindRequestTrailers, kindResponseTrailers:
		return nil
	}
	inv.abort(fmt.Errorf("wasm: unknown header kind %d", kind))
	return nil
}

// isHost says whether a request header name is Host, which Request keeps apart (Host).
func isHost(kind uint32, name string) bool {
	return kind == kindRequest && strings.EqualFold(name, "Host")
}

// countLen packs the count and byte length of a NUL-terminated list.
func countLen(count int, b []byte) uint64 {
	return uint64(count)<<32 | uint64(uint32(len(b)))
}

func getHeaderNames(ctx context.Context, mod api.Module, stack []uint64) {
	inv := invocationFrom(ctx)
	kind := uint32(stack[0])
	h := inv.headers(kind)
	names := make([]string, 0, len(h)+1)
	for k := range h {
		names = append(names, k)
	}
	if kind == kindRequest && inv.req.Host != "" && h.Get("Host") == "" {
		names = append(names, "Host")
	}
	slices.Sort(names)
	b := appendList(nil, names...)
	writeIfFits(mod, uint32(stack[1]), uint32(stack[2]), b)
	stack[0] = countLen(len(names), b)
}

func getHeaderValues(ctx context.Context, mod api.Module, stack []uint64) {
	inv := invocationFrom(ctx)
	kind := uint32(stack[0])
	name := readString(mod, uint32(stack[1]), uint32(stack[2]))
	var values []string
	if isHost(kind, name) && inv.req.Host != "" {
		values = []string{inv.req.Host}
	} else {
		values = inv.headers(kind).Values(name)
	}
	b := appendList(nil, values...)
	writeIfFits(mod, uint32(stack[3]), uint32(stack[4]), b)
	stack[0] = countLen(len(values), b)
}

// headerArgs reads the (kind, name, value) of set_header_value and add_header_value.
func headerArgs(inv *invocation, mod api.Module, stack []uint64) (uint32, string, string) {
	kind := uint32(stack[0])
	name := readString(mod, uint32(stack[1]), uint32(stack[2]))
	value := readString(mod, uint32(stack[3]), uint32(stack[4]))
	if !validHeaderName(name) || !validHeaderValue(value) {
		inv.abort(fmt.Errorf("wasm: invalid header %q: %q", name, value))
	}
	return kind, name, value
}

func setHeaderValue(ctx context.Context, mod api.Module, stack []uint64) {
	inv := invocationFrom(ctx)
	kind, name, value := headerArgs(inv, mod, stack)
	if isHost(kind, name) {
		inv.req.Host = value
		return
	}
	if h := inv.headers(kind); h != nil {
		h.Set(name, value)
	}
}

func addHeaderValue(ctx context.Context, mod api.Module, stack []uint64) {
	inv := invocationFrom(ctx)
	kind, name, value := headerArgs(inv, mod, stack)
	if isHost(kind, name) {
		inv.req.Host = value
		return
	}
	if h := inv.headers(kind); h != nil {
		h.Add(name, value)
	}
}

func removeHeader(ctx context.Context, mod api.Module, stack []uint64) {
	inv := invocationFrom(ctx)
	kind := uint32(stack[0])
	name := readString(mod, uint32(stack[1]), uint32(stack[2]))
	if isHost(kind, name) {
		inv.req.Host = ""
	}
	if h := inv.headers(kind); h != nil {
		h.Del(name)
	}
}

func readBody(ctx context.Context, mod api.Module, stack []uint64) {
	inv := invocationFrom(ctx)
	kind, buf, limit := uint32(stack[0]), uint32(stack[1]), uint32(stack[2])
	var rest []byte
	switch kind {
	case kindRequest:
		rest = inv.requestBody()[inv.reqBodyPos:]
	case kindResponse:
		// Neither the upstream's body (not buffered for handle_response) nor the guest's
		// own response is readable: it reads as empty.
	default:
		inv.abort(fmt.Errorf("wasm: read_body: unknown body kind %d", kind))
	}
	n := min(uint32(len(rest)), limit)
	if n > 0 && !mod.Memory().Write(buf, rest[:n]) {
		panic(errMemoryRange)
	}
	if kind == kindRequest {
		inv.reqBodyPos += int(n)
	}
	eof := uint64(0)
	if int(n) == len(rest) {
		eof = 1
	}
	stack[0] = eof<<32 | uint64(n)
}

func writeBody(ctx context.Context, mod api.Module, stack []uint64) {
	inv := invocationFrom(ctx)
	kind := uint32(stack[0])
	b := readGuest(mod, uint32(stack[1]), uint32(stack[2]))
	max := inv.f.limits.MaxBodyBytes
	switch kind {
	case kindRequest:
		if inv.newReqBody == nil {
			inv.newReqBody = new(bytes.Buffer)
		}
		if int64(inv.newReqBody.Len()+len(b)) > max {
			inv.abort(function.ErrTooLarge)
		}
		inv.newReqBody.Write(b)
	case kindResponse:
		if inv.phase == phaseResponse {
			inv.abort(errors.New("wasm: write_body: the upstream's response body cannot be rewritten in handle_response"))
		}
		if int64(inv.body.Len()+len(b)) > max {
			inv.abort(function.ErrTooLarge)
		}
		inv.body.Write(b)
	default:
		inv.abort(fmt.Errorf("wasm: write_body: unknown body kind %d", kind))
	}
}

func getStatusCode(ctx context.Context, _ api.Module, stack []uint64) {
	inv := invocationFrom(ctx)
	if inv.phase == phaseResponse {
		stack[0] = uint64(uint32(inv.upStatus))
		return
	}
	stack[0] = uint64(uint32(inv.status))
}

func setStatusCode(ctx context.Context, _ api.Module, stack []uint64) {
	inv := invocationFrom(ctx)
	code := int(int32(stack[0]))
	if code < 100 || code > 999 {
		inv.abort(fmt.Errorf("wasm: set_status_code: invalid status %d", code))
	}
	if inv.phase == phaseResponse {
		inv.upStatus = code
		return
	}
	inv.status = code
}
