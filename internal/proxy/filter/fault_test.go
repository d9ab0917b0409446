package filter

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/ir"
)

func TestFaultAbortAndScope(t *testing.T) {
	rt := prefixRoute("/")
	rt.Fault = &ir.FaultInjection{Match: &ir.RequestMatch{Headers: []ir.ValueMatch{{Name: "x-chaos", Type: ir.ValueExact, Value: "on"}}}, AbortStatus: 503, AbortPercent: 100}
	c, _ := Compile(rt, nil)
	if x, rec := send(t, c, rt, "192.0.2.1", "X-Chaos", "on"); rec.Code != 503 || x.Flags != FlagFaultInjected {
		t.Errorf("abort: %d %s", rec.Code, x.Flags)
	}
	if _, rec := send(t, c, rt, "192.0.2.1"); rec.Code != 200 {
		t.Errorf("without the header: %d", rec.Code)
	}
	rt.Fault = &ir.FaultInjection{AbortGRPC: 14, AbortPercent: 100}
	c, _ = Compile(rt, nil)
	if _, rec := send(t, c, rt, "192.0.2.1"); rec.Code != 200 || rec.Header().Get("Grpc-Status") != "14" {
		t.Errorf("gRPC abort: %d %v", rec.Code, rec.Header())
	}
	rt.Fault = &ir.FaultInjection{AbortStatus: 500, AbortPercent: 0}
	c, _ = Compile(rt, nil)
	for range 50 {
		if _, rec := send(t, c, rt, "192.0.2.1"); rec.Code != 200 {
			t.Fatalf("0%% abort answered %d", rec.Code)
		}
	}
}

func TestFaultDelay(t *testing.T) {
	rt := prefixRoute("/")
	rt.Fault = &ir.FaultInjection{Delay: ir.Duration(50 * time.Millisecond), DelayPercent: 100}
	c, _ := Compile(rt, nil)
	start := time.Now()
	x, rec := send(t, c, rt, "192.0.2.1")
	if d := time.Since(start); d < 50*time.Millisecond || rec.Code != 200 || x.Flags != FlagDelayInjected {
		t.Errorf("delay: %v %d %s", d, rec.Code, x.Flags)
	}
	// A client that goes away ends the delay at once.
	rt.Fault = &ir.FaultInjection{Delay: ir.Duration(time.Hour), DelayPercent: 100}
	c, _ = Compile(rt, nil)
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	x, rec = exchange(r, rt)
	time.AfterFunc(20*time.Millisecond, cancel)
	if !c.Run(x) || rec.Code != 499 {
		t.Errorf("cancelled delay: %d", rec.Code)
	}
}
