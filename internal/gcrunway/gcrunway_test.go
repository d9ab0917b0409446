package gcrunway

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mi = 1 << 20
	for _, c := range []struct {
		live, runway uint64
		base, want   int
	}{
		{50 * mi, 128 * mi, 100, 256},  // one project: 128 MiB of runway, not 50
		{128 * mi, 128 * mi, 100, 100}, // the runtime's own runway is as large
		{600 * mi, 128 * mi, 100, 100}, // many projects: unchanged
		{1 * mi, 128 * mi, 100, MaxPercent},
		{0, 128 * mi, 100, 100},
		{50 * mi, 10 * mi, 200, 200}, // never below the base
	} {
		if got := Percent(c.live, c.runway, c.base); got != c.want {
			t.Errorf("Percent(%d MiB live, %d MiB runway, base %d) = %d, want %d", c.live/mi, c.runway/mi, c.base, got, c.want)
		}
	}
}

func gogc() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// Keep sets GOGC from the live heap, and leaves it alone when the environment sets GOGC.
func TestKeep(t *testing.T) {
	t.Setenv("GOGC", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	runtime.GC() // the live heap is known after a collection
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	Keep(ctx, 1<<30, 10*time.Millisecond, log)
	// A test binary's live heap is a few MiB: a GiB of runway is more than MaxPercent gives.
	if got := gogc(); got != MaxPercent {
		t.Fatalf("GOGC %d after Keep with a 1 GiB runway, want %d", got, MaxPercent)
	}

	debug.SetGCPercent(100)
	t.Setenv("GOGC", "100")
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	Keep(ctx, 1<<30, 10*time.Millisecond, log)
	if got := gogc(); got != 100 {
		t.Fatalf("GOGC %d with GOGC=100 in the environment, want it left at 100", got)
	}
}

func TestParseCgroupLimit(t *testing.T) {
	for in, want := range map[string]int64{
		"536870912\n":           536870912,
		"max\n":                 0,
		"9223372036854771712\n": 0, // cgroup v1: no limit
		"":                      0,
		"-1":                    0,
	} {
		if got := ParseCgroupLimit(in); got != want {
			t.Errorf("ParseCgroupLimit(%q) = %d, want %d", in, got, want)
		}
	}
}
