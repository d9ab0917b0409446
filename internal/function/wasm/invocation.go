package wasm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/tetratelabs/wazero/api"

	"apoxy.dev/apoxy/internal/function"
)

// Features of the http-wasm ABI (enable_features).
const (
	featureBufferRequest  = 1
	featureBufferResponse = 2
	featureTrailers       = 4
)

// phase is which guest export is running.
type phase int

const (
	phaseRequest phase = iota
	phaseResponse
)

// invocation is one request's state, reached by the host functions through the call's
// context (ctx.Value(invocationKey{})).
type invocation struct {
	f     *Function
	inst  *instance
	req   *function.Request
	host  *function.Host
	phase phase

	// The response the guest writes in handle_request.
	status int
	header http.Header // made when the guest first touches it
	body   bytes.Buffer

	// The request body, read (at most Limits.MaxBodyBytes) when the guest first asks.
	reqBody     []byte
	reqBodyRead bool
	reqBodyPos  int
	// newReqBody is what the guest wrote as the request body (nil: unchanged).
	newReqBody *bytes.Buffer

	// The upstream's response head, in handle_response.
	upStatus int
	upHeader http.Header

	fetches    int
	fetchBytes int64
	responses  map[uint32]*fetched
	nextHandle uint32

	// kvLast keeps the last kv_get value, so a guest retrying with a bigger buffer does not
	// read the store again.
	kvLastKey string
	kvLast    []byte

	// err is a failure a host function recorded before trapping the guest.
	err    error
	stderr bytes.Buffer
}

type invocationKey struct{}

func newInvocation(f *Function, inst *instance, req *function.Request, host *function.Host) *invocation {
	if req.Header == nil {
		req.Header = http.Header{}
	}
	return &invocation{f: f, inst: inst, req: req, host: host, status: http.StatusOK}
}

// invocationFrom is the invocation a host function is serving (while _initialize runs, an
// empty one).
func invocationFrom(ctx context.Context) *invocation {
	inv, _ := ctx.Value(invocationKey{}).(*invocation)
	if inv == nil {
		panic("http_handler: called outside a request")
	}
	return inv
}

// abort records err as the invocation's result and traps the guest.
func (inv *invocation) abort(err error) {
	if inv.err == nil {
		inv.err = err
	}
	panic(err)
}

// call runs fn on the instance under Limits.Timeout, cancelled as well by the caller's ctx
// and by Close.
func (inv *invocation) call(parent context.Context, fn api.Function, params ...uint64) (uint64, error) {
	ctx, cancel := context.WithTimeout(parent, inv.f.limits.Timeout)
	defer cancel()
	stop := context.AfterFunc(inv.f.closeCtx, cancel)
	defer stop()
	ctx = context.WithValue(ctx, invocationKey{}, inv)
	inv.inst.cur.Store(inv)
	stack := inv.inst.stack
	copy(stack, params)
	if err := fn.CallWithStack(ctx, stack); err != nil {
		return 0, inv.callError(ctx, parent, err)
	}
	if inv.err != nil {
		return 0, inv.err
	}
	return stack[0], nil
}

// answer is the Result of a guest that wrote the response.
func (inv *invocation) answer() *function.Result {
	if inv.header == nil {
		inv.header = http.Header{}
	}
	return &function.Result{Status: inv.status, Header: inv.header, Body: bytes.Clone(inv.body.Bytes())}
}

// passRequest puts the request body back for the next handler: the guest's rewrite, or
// what was read of it.
func (inv *invocation) passRequest() {
	switch {
	case inv.newReqBody != nil:
		inv.req.Body = bytes.NewReader(inv.newReqBody.Bytes())
	case inv.reqBodyRead:
		inv.req.Body = bytes.NewReader(inv.reqBody)
	}
}

// beginResponse switches to handle_response with the upstream's status and header.
func (inv *invocation) beginResponse(status int, header http.Header) {
	inv.phase = phaseResponse
	inv.upStatus = status
	inv.upHeader = header
	inv.err = nil
	inv.stderr.Reset()
}

// finish frees what the invocation holds.
func (inv *invocation) finish() {
	inv.responses = nil
	inv.kvLast = nil
}

// requestBody reads the request body once, refusing one over Limits.MaxBodyBytes.
func (inv *invocation) requestBody() []byte {
	if inv.reqBodyRead {
		return inv.reqBody
	}
	inv.reqBodyRead = true
	if inv.req.Body == nil {
		return nil
	}
	max := inv.f.limits.MaxBodyBytes
	b, err := io.ReadAll(io.LimitReader(inv.req.Body, max+1))
	if err != nil {
		inv.abort(fmt.Errorf("wasm: reading the request body: %w", err))
	}
	if int64(len(b)) > max {
		inv.abort(function.ErrTooLarge)
	}
	inv.reqBody = b
	return b
}

// log sends a line to Host.Log, when there is one.
func (inv *invocation) log(level slog.Level, msg string) {
	if inv.host.Log != nil {
		inv.host.Log(level, msg)
	}
}

// outOfMemory says whether a failed guest ran out of memory: the Go runtime says so on
// stderr before it exits, and any guest's memory is then at (or near) its cap.
func (inv *invocation) outOfMemory() bool {
	if strings.Contains(inv.stderr.String(), "out of memory") {
		return true
	}
	mem := inv.inst.mod.Memory()
	if mem == nil {
		return false
	}
	limit := uint64(memoryPages(inv.f.limits.MemoryBytes)) << 16
	return uint64(mem.Size())+(1<<16) > limit
}
