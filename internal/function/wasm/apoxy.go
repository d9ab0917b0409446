package wasm

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"apoxy.dev/apoxy/internal/function"
)

// Codes the apoxy import module returns to the guest (see the package doc).
const (
	codeNoCapability = -1
	codeNotFound     = -2
	codeFailed       = -3
	codeLimit        = -4
	codeInvalid      = -5
)

// maxKVKey bounds a KV key a guest passes.
const maxKVKey = 512

// fetched is an outbound response, read whole, that a guest reads through its handle.
type fetched struct {
	status  int
	headers []byte // "name\0value\0..." pairs
	pairs   int
	body    []byte
	pos     int
}

// instantiateApoxy defines the gateway's own import module, apoxy.
func instantiateApoxy(ctx context.Context, r wazero.Runtime) error {
	return instantiateModule(ctx, r, "apoxy", []hostFunc{
		{"fetch", []api.ValueType{i32, i32, i32, i32, i32, i32, i32, i32}, []api.ValueType{i32}, fetch},
		{"fetch_status", []api.ValueType{i32}, []api.ValueType{i32}, fetchStatus},
		{"fetch_headers", []api.ValueType{i32, i32, i32}, []api.ValueType{i64}, fetchHeaders},
		{"fetch_read_body", []api.ValueType{i32, i32, i32}, []api.ValueType{i64}, fetchReadBody},
		{"fetch_close", []api.ValueType{i32}, nil, fetchClose},
		{"kv_get", []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i64}, kvGet},
		{"kv_put", []api.ValueType{i32, i32, i32, i32, i64}, []api.ValueType{i32}, kvPut},
		{"kv_delete", []api.ValueType{i32, i32}, []api.ValueType{i32}, kvDelete},
	})
}

// code puts a negative code on the stack as an i32 result.
func code(c int32) uint64 { return uint64(uint32(c)) }

// code64 puts a negative code on the stack as an i64 result.
func code64(c int64) uint64 { return uint64(c) }

func fetch(ctx context.Context, mod api.Module, stack []uint64) {
	inv := invocationFrom(ctx)
	stack[0] = code(inv.fetch(ctx, mod, stack))
}

// fetch makes the guest's outbound request and keeps its response under a new handle.
func (inv *invocation) fetch(ctx context.Context, mod api.Module, stack []uint64) int32 {
	if inv.host.Fetch == nil {
		inv.log(slog.LevelWarn, function.ErrNoFetch.Error())
		return codeNoCapability
	}
	if inv.fetches >= inv.f.limits.MaxFetches {
		return codeLimit
	}
	method := readString(mod, uint32(stack[0]), uint32(stack[1]))
	rawURL := readString(mod, uint32(stack[2]), uint32(stack[3]))
	header, err := parseHeaderList(readGuest(mod, uint32(stack[4]), uint32(stack[5])))
	if err != nil {
		return codeInvalid
	}
	body := bytes.Clone(readGuest(mod, uint32(stack[6]), uint32(stack[7])))
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, bytes.NewReader(body))
	if err != nil || (req.URL.Scheme != "http" && req.URL.Scheme != "https") {
		return codeInvalid
	}
	if header != nil {
		req.Header = header
	}
	inv.fetches++
	resp, err := inv.host.Fetch(ctx, req)
	if err != nil {
		inv.log(slog.LevelWarn, "fetch "+rawURL+": "+err.Error())
		return codeFailed
	}
	defer resp.Body.Close()
	remaining := inv.f.limits.MaxFetchBytes - inv.fetchBytes
	b, err := io.ReadAll(io.LimitReader(resp.Body, remaining+1))
	inv.fetchBytes += int64(len(b))
	if int64(len(b)) > remaining {
		return codeLimit
	}
	if err != nil {
		return codeFailed
	}
	names := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		names = append(names, k)
	}
	slices.Sort(names)
	fr := &fetched{status: resp.StatusCode, body: b}
	for _, k := range names {
		for _, v := range resp.Header[k] {
			fr.headers = appendList(fr.headers, k, v)
			fr.pairs++
		}
	}
	if inv.responses == nil {
		inv.responses = map[uint32]*fetched{}
	}
	inv.nextHandle++
	inv.responses[inv.nextHandle] = fr
	return int32(inv.nextHandle)
}

// response is the fetched response of a guest's handle; nil when there is none.
func (inv *invocation) response(h uint64) *fetched {
	return inv.responses[uint32(h)]
}

func fetchStatus(ctx context.Context, _ api.Module, stack []uint64) {
	fr := invocationFrom(ctx).response(stack[0])
	if fr == nil {
		stack[0] = code(codeInvalid)
		return
	}
	stack[0] = uint64(uint32(fr.status))
}

func fetchHeaders(ctx context.Context, mod api.Module, stack []uint64) {
	fr := invocationFrom(ctx).response(stack[0])
	if fr == nil {
		stack[0] = code64(codeInvalid)
		return
	}
	writeIfFits(mod, uint32(stack[1]), uint32(stack[2]), fr.headers)
	stack[0] = countLen(fr.pairs, fr.headers)
}

func fetchReadBody(ctx context.Context, mod api.Module, stack []uint64) {
	fr := invocationFrom(ctx).response(stack[0])
	if fr == nil {
		stack[0] = code64(codeInvalid)
		return
	}
	rest := fr.body[fr.pos:]
	n := min(uint32(len(rest)), uint32(stack[2]))
	if n > 0 && !mod.Memory().Write(uint32(stack[1]), rest[:n]) {
		panic(errMemoryRange)
	}
	fr.pos += int(n)
	eof := uint64(0)
	if int(n) == len(rest) {
		eof = 1
	}
	stack[0] = eof<<32 | uint64(n)
}

func fetchClose(ctx context.Context, _ api.Module, stack []uint64) {
	inv := invocationFrom(ctx)
	delete(inv.responses, uint32(stack[0]))
}

// kvKey reads a guest's KV key; "" when it is empty or too long. (An i32 argument's upper
// 32 bits on the stack are undefined: every one is truncated before use.)
func kvKey(mod api.Module, ptr, n uint32) string {
	if n == 0 || n > maxKVKey {
		return ""
	}
	return readString(mod, ptr, n)
}

func kvGet(ctx context.Context, mod api.Module, stack []uint64) {
	inv := invocationFrom(ctx)
	if inv.host.KV == nil {
		inv.log(slog.LevelWarn, function.ErrNoKV.Error())
		stack[0] = code64(codeNoCapability)
		return
	}
	key := kvKey(mod, uint32(stack[0]), uint32(stack[1]))
	if key == "" {
		stack[0] = code64(codeInvalid)
		return
	}
	var value []byte
	if inv.kvLast != nil && inv.kvLastKey == key {
		value = inv.kvLast
	} else {
		v, ok, err := inv.host.KV.Get(ctx, key)
		switch {
		case err != nil:
			inv.log(slog.LevelWarn, "kv get "+key+": "+err.Error())
			stack[0] = code64(codeFailed)
			return
		case !ok:
			stack[0] = code64(codeNotFound)
			return
		}
		value = v.Value
		if value == nil {
			value = []byte{}
		}
	}
	n := writeIfFits(mod, uint32(stack[2]), uint32(stack[3]), value)
	if n > uint32(stack[3]) {
		inv.kvLastKey, inv.kvLast = key, value // the guest asks again with a bigger buffer
	} else {
		inv.kvLastKey, inv.kvLast = "", nil
	}
	stack[0] = uint64(n)
}

func kvPut(ctx context.Context, mod api.Module, stack []uint64) {
	inv := invocationFrom(ctx)
	if inv.host.KV == nil {
		inv.log(slog.LevelWarn, function.ErrNoKV.Error())
		stack[0] = code(codeNoCapability)
		return
	}
	key := kvKey(mod, uint32(stack[0]), uint32(stack[1]))
	if key == "" {
		stack[0] = code(codeInvalid)
		return
	}
	value := bytes.Clone(readGuest(mod, uint32(stack[2]), uint32(stack[3])))
	ttl := time.Duration(int64(stack[4])) * time.Millisecond
	if ttl < 0 {
		stack[0] = code(codeInvalid)
		return
	}
	inv.kvLastKey, inv.kvLast = "", nil
	if err := inv.host.KV.Put(ctx, key, value, function.KVPut{TTL: ttl}); err != nil {
		inv.log(slog.LevelWarn, "kv put "+key+": "+err.Error())
		stack[0] = code(codeFailed)
		return
	}
	stack[0] = 0
}

func kvDelete(ctx context.Context, mod api.Module, stack []uint64) {
	inv := invocationFrom(ctx)
	if inv.host.KV == nil {
		inv.log(slog.LevelWarn, function.ErrNoKV.Error())
		stack[0] = code(codeNoCapability)
		return
	}
	key := kvKey(mod, uint32(stack[0]), uint32(stack[1]))
	if key == "" {
		stack[0] = code(codeInvalid)
		return
	}
	inv.kvLastKey, inv.kvLast = "", nil
	if err := inv.host.KV.Delete(ctx, key); err != nil {
		inv.log(slog.LevelWarn, "kv delete "+key+": "+err.Error())
		stack[0] = code(codeFailed)
		return
	}
	stack[0] = 0
}
