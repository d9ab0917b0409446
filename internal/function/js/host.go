package js

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"modernc.org/quickjs"

	"apoxy.dev/apoxy/internal/function"
)

// registerHost defines __host(op, ...args), the one Go function the prelude builds its
// surface on; the prelude keeps it private. One function per VM, not one per operation:
// the engine's registry of Go functions is process-wide and bounded (32767).
func (inst *instance) registerHost() error {
	return inst.vm.RegisterFunc("__host", inst.host, false)
}

// host runs one host operation for the prelude. It reaches the running invocation through
// inst.inv, which is nil while the module loads.
func (inst *instance) host(op string, args ...any) quickjs.Value {
	arg := func(i int) any {
		if i < len(args) {
			return args[i]
		}
		return nil
	}
	str := func(i int) string { s, _ := arg(i).(string); return s }
	num := func(i int) float64 {
		switch n := arg(i).(type) {
		case int:
			return float64(n)
		case float64:
			return n
		}
		return 0
	}
	inv := inst.inv
	switch op {
	case "log":
		if inv != nil && inv.host.Log != nil {
			inv.host.Log(slog.Level(num(0)), str(1))
		}
	case "random":
		b := make([]byte, int(max(0, min(num(0), 65536))))
		rand.Read(b)
		return inst.str(latin1String(b))
	case "uuid":
		return inst.str(uuid())
	case "digest":
		var h hash.Hash
		switch str(0) {
		case "SHA-1":
			h = sha1.New()
		case "SHA-256":
			h = sha256.New()
		case "SHA-384":
			h = sha512.New384()
		case "SHA-512":
			h = sha512.New()
		default:
			return quickjs.UndefinedValue
		}
		h.Write(latin1Bytes(str(1)))
		return inst.str(latin1String(h.Sum(nil)))
	case "body":
		return inst.str(inst.readBody())
	case "bodyChunk":
		b, err := inst.readBodyChunk()
		switch {
		case err == io.EOF:
			return inst.vm.NewInt(0)
		case err != nil:
			inv.bodyErr = err
			return inst.vm.NewInt(-1)
		}
		return inst.str(latin1String(b))
	case "bodyOpen":
		// The function reads the body as a stream, maybe after it answered (a streamed
		// response that copies it): the body stays its own.
		if inv != nil {
			inv.bodyRead = true
		}
	case "bodyError":
		if inv != nil && inv.bodyErr != nil {
			return inst.str(inv.bodyErr.Error())
		}
		return inst.str("the request body could not be read")
	case "chunk":
		if inv == nil || inv.stream == nil || inv.stream.ended {
			return inst.vm.NewInt(0)
		}
		if s, ok := arg(0).(string); ok {
			if inv.stream.send(inv.ctx, latin1Bytes(s)) {
				return inst.vm.NewInt(1)
			}
			return inst.vm.NewInt(0)
		}
		var err error
		if msg := str(1); msg != "" {
			err = errors.New("js: the response stream failed: " + msg)
			if inv.host.Log != nil {
				inv.host.Log(slog.LevelError, err.Error())
			}
		}
		inv.stream.end(err)
	case "settle":
		if inv == nil {
			break
		}
		if s, ok := arg(0).(string); ok {
			inv.settled, inv.result, inv.waits = true, s, num(1) > 0
			if num(2) > 0 {
				inv.stream = newBodyStream(inv.cancel)
			}
		} else {
			inv.waitsDone = true
		}
	case "loadFailed":
		inst.loadErr = str(0)
	case "loaded":
		inst.loaded, inst.hasResponse = true, num(0) != 0
	case "fetch":
		wire := str(0)
		return inst.hostCall(func(inv *invocation) (any, error) { return inv.fetch(wire) })
	case "kv":
		kop, wire := str(0), str(1)
		return inst.hostCall(func(inv *invocation) (any, error) { return inv.kv(kop, wire) })
	case "sleep":
		// Beyond a day is beyond any timeout; it also keeps the product in range.
		d := time.Duration(max(0, min(num(0), float64(24*time.Hour/time.Millisecond))) * float64(time.Millisecond))
		return inst.hostCall(func(inv *invocation) (any, error) {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-inv.ctx.Done():
			}
			return map[string]any{}, nil
		})
	}
	return quickjs.UndefinedValue
}

// str makes a JS string the caller hands to the engine.
func (inst *instance) str(s string) quickjs.Value {
	v, err := inst.vm.NewString(s)
	if err != nil {
		return quickjs.UndefinedValue
	}
	return v
}

// uuid is a random (version 4) UUID.
func uuid() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// readBody reads the request body once, up to Limits.MaxBodyBytes, and returns it as the
// JSON {s, bin} the prelude's Body reads: text when it is UTF-8, else a latin1 string.
func (inst *instance) readBody() string {
	inv := inst.inv
	if inv == nil || inv.req.Body == nil {
		return `{"s":""}`
	}
	if !inv.bodyRead {
		b, err := io.ReadAll(io.LimitReader(inv.req.Body, inv.limits.MaxBodyBytes+1))
		inv.bodyRead, inv.body, inv.bodyErr = true, b, err
		if err == nil && int64(len(b)) > inv.limits.MaxBodyBytes {
			inv.bodyErr = function.ErrTooLarge
		}
	}
	if inv.bodyErr != nil {
		return mustJSON(map[string]any{"s": "", "error": inv.bodyErr.Error()})
	}
	if utf8.Valid(inv.body) {
		return mustJSON(map[string]any{"s": string(inv.body)})
	}
	return mustJSON(map[string]any{"s": latin1String(inv.body), "bin": true})
}

// readBodyChunk reads the next part (up to 64 KiB) of the request body for a body stream;
// io.EOF at its end. A filter's reads are kept, as readBody's are, to send on, within
// Limits.MaxBodyBytes; a backend's are not, so a backend may stream a body of any size.
func (inst *instance) readBodyChunk() ([]byte, error) {
	inv := inst.inv
	if inv == nil || inv.req.Body == nil || inv.bodyDone {
		return nil, io.EOF
	}
	inv.bodyRead = true
	// The read runs on a goroutine of its own so that the invocation's deadline still ends
	// a function waiting on a client that sends slowly or not at all.
	type read struct {
		b   []byte
		err error
	}
	got := make(chan read, 1)
	go func(body io.Reader) {
		buf := make([]byte, 64<<10)
		n, err := body.Read(buf)
		for n == 0 && err == nil {
			n, err = body.Read(buf)
		}
		got <- read{buf[:n], err}
	}(inv.req.Body)
	var r read
	select {
	case r = <-got:
	case <-inv.ctx.Done():
		return nil, context.Cause(inv.ctx)
	}
	buf, n, err := r.b, len(r.b), r.err
	if err == io.EOF {
		inv.bodyDone = true
		err = nil
	}
	if err != nil {
		return nil, err
	}
	if inst.f.mode == function.ModeFilter {
		// A filter passes the body on: what it read is kept, within the limit.
		if int64(len(inv.body)+n) > inv.limits.MaxBodyBytes {
			return nil, function.ErrTooLarge
		}
		inv.body = append(inv.body, buf...)
	}
	if n == 0 {
		return nil, io.EOF
	}
	return buf, nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf(`{"error":%q}`, err.Error())
	}
	return string(b)
}

// hostCall runs call on its own goroutine and returns a promise the event loop resolves
// with its result, as JSON ({error} on failure), on the VM's goroutine.
func (inst *instance) hostCall(call func(inv *invocation) (any, error)) quickjs.Value {
	inv := inst.inv
	if inv == nil {
		return inst.str(`{"error":"host calls are not available while the module loads"}`)
	}
	pc, err := inst.vm.NewPromiseCapability()
	if err != nil {
		// Out of the engine's memory: awaiting undefined then fails in the function.
		return quickjs.UndefinedValue
	}
	if inv.pending == nil {
		inv.pending = map[*quickjs.PromiseCapability]struct{}{}
		inv.completions = make(chan func())
	}
	inv.pending[pc] = struct{}{}
	inv.inflight++
	completions := inv.completions
	go func() {
		v, err := call(inv)
		var s string
		if err != nil {
			s = mustJSON(map[string]string{"error": err.Error()})
		} else {
			s = mustJSON(v)
		}
		complete := func() {
			if _, ok := inv.pending[pc]; !ok {
				return
			}
			delete(inv.pending, pc)
			pc.Resolve.Call(quickjs.UndefinedValue, s)
			pc.Resolve.Free()
			pc.Reject.Free()
		}
		select {
		case completions <- complete:
		case <-inv.ctx.Done():
		}
	}()
	return pc.Promise
}

// wireFetch is a fetch request from the prelude; wireFetchResponse its answer.
type wireFetch struct {
	Method  string              `json:"method"`
	URL     string              `json:"url"`
	Headers map[string][]string `json:"headers"`
	Body    *string             `json:"body"`
	Bin     bool                `json:"bin"`
}

type wireFetchResponse struct {
	Status     int                 `json:"status"`
	StatusText string              `json:"statusText"`
	Headers    map[string][]string `json:"headers"`
	URL        string              `json:"url"`
	Body       string              `json:"body"`
	Bin        bool                `json:"bin,omitempty"`
}

// fetch makes an outbound request through Host.Fetch, within the invocation's count and
// bytes limits. It runs on its own goroutine, so the counters are atomic.
func (inv *invocation) fetch(wire string) (any, error) {
	if inv.host.Fetch == nil {
		return nil, function.ErrNoFetch
	}
	if n := inv.fetchCount.Add(1); n > int64(inv.limits.MaxFetches) {
		return nil, fmt.Errorf("fetch: the function made more than %d fetches", inv.limits.MaxFetches)
	}
	var w wireFetch
	if err := json.Unmarshal([]byte(wire), &w); err != nil {
		return nil, err
	}
	var body io.Reader
	if w.Body != nil {
		if w.Bin {
			body = bytes.NewReader(latin1Bytes(*w.Body))
		} else {
			body = strings.NewReader(*w.Body)
		}
	}
	req, err := http.NewRequestWithContext(inv.ctx, w.Method, w.URL, body)
	if err != nil {
		return nil, err
	}
	for k, v := range w.Headers {
		req.Header[http.CanonicalHeaderKey(k)] = v
	}
	resp, err := inv.host.Fetch(inv.ctx, req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", w.URL, err)
	}
	defer resp.Body.Close()
	left := inv.fetchBudget.Load()
	b, err := io.ReadAll(io.LimitReader(resp.Body, left+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: reading the body: %w", w.URL, err)
	}
	if int64(len(b)) > left || inv.fetchBudget.Add(-int64(len(b))) < 0 {
		return nil, fmt.Errorf("fetch %s: %w: the function's fetches read over %d bytes", w.URL, function.ErrTooLarge, inv.limits.MaxFetchBytes)
	}
	out := wireFetchResponse{Status: resp.StatusCode, StatusText: strings.TrimSpace(strings.TrimPrefix(resp.Status, fmt.Sprint(resp.StatusCode))),
		Headers: map[string][]string{}, URL: w.URL}
	for k, v := range resp.Header {
		out.Headers[strings.ToLower(k)] = v
	}
	if utf8.Valid(b) {
		out.Body = string(b)
	} else {
		out.Body, out.Bin = latin1String(b), true
	}
	return out, nil
}

// wireKV is a KV call from the prelude.
type wireKV struct {
	Key      string  `json:"key"`
	Value    string  `json:"value"`
	Bin      bool    `json:"bin"`
	TTL      float64 `json:"ttl"`
	Metadata *string `json:"metadata"`
	Prefix   string  `json:"prefix"`
	Cursor   string  `json:"cursor"`
	Limit    int     `json:"limit"`
}

// kv runs one KV operation on Host.KV.
func (inv *invocation) kv(op, wire string) (any, error) {
	kv := inv.host.KV
	if kv == nil {
		return nil, function.ErrNoKV
	}
	var w wireKV
	if err := json.Unmarshal([]byte(wire), &w); err != nil {
		return nil, err
	}
	ctx := inv.ctx
	switch op {
	case "get":
		v, ok, err := kv.Get(ctx, w.Key)
		if err != nil || !ok {
			return map[string]any{"found": false}, err
		}
		out := map[string]any{"found": true, "metadata": v.Metadata}
		if utf8.Valid(v.Value) {
			out["value"] = string(v.Value)
		} else {
			out["value"], out["bin"] = latin1String(v.Value), true
		}
		return out, nil
	case "put":
		val := []byte(w.Value)
		if w.Bin {
			val = latin1Bytes(w.Value)
		}
		opts := function.KVPut{TTL: time.Duration(w.TTL * float64(time.Second))}
		if w.Metadata != nil {
			opts.Metadata = *w.Metadata
		}
		return map[string]any{}, kv.Put(ctx, w.Key, val, opts)
	case "delete":
		return map[string]any{}, kv.Delete(ctx, w.Key)
	case "list":
		keys, next, err := kv.List(ctx, w.Prefix, w.Cursor, w.Limit)
		if err != nil {
			return nil, err
		}
		type key struct {
			Name       string `json:"name"`
			Metadata   string `json:"metadata,omitempty"`
			Expiration int64  `json:"expiration,omitempty"`
		}
		out := make([]key, 0, len(keys))
		for _, k := range keys {
			e := key{Name: k.Name, Metadata: k.Metadata}
			if !k.Expires.IsZero() {
				e.Expiration = k.Expires.Unix()
			}
			out = append(out, e)
		}
		return map[string]any{"keys": out, "cursor": next}, nil
	}
	return nil, errors.New("kv: unknown operation " + op)
}
