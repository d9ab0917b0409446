// Package gcrunway keeps the garbage collector's runway, how much the heap may grow before the
// next collection, at least a fixed number of bytes.
//
// The server runs the API, the controllers and the data plane in one process. Their live heap
// (~50 MiB for one project, most of it the API machinery's schemas) sets the runway at
// GOGC=100: about 50 MiB, which proxied traffic (~3.7 KB a request) fills every few seconds at a
// few thousand requests a second. Each collection then marks the whole heap, 50-150 ms on this
// kind of machine, and requests served meanwhile wait: at 5,000 requests/s over HTTP/1.1 that
// made p99 9.7 ms where nginx's was 2.2. With 128 MiB of runway the same load collects 2.5 times
// less often, without assists, and p99 was 3.2 ms (docs/performance.md).
//
// The runway is a floor, not a multiplier: a process whose live heap is already larger than
// the runway (many projects) keeps the runtime's GOGC, so what idle projects cost is unchanged,
// and memory taken while traffic flows is handed back when it stops (the server's idle trim).
// GOGC set in the environment is the operator's choice and is left alone; so is GOMEMLIMIT,
// which the runtime honours whatever GOGC says. Without GOMEMLIMIT, a cgroup memory limit
// (containers) sets one at 90 % of it, so the extra runway cannot take a container over.
package gcrunway

import (
	"context"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// MaxPercent bounds the GOGC the runway may set: a tiny live heap (a test binary) must not get
// a runway hundreds of times its size.
const MaxPercent = 1000

// Percent is the GOGC that leaves at least runway bytes between a live heap of live bytes and the
// next collection, never below base (the runtime's GOGC without this package) nor above
// MaxPercent.
func Percent(live, runway uint64, base int) int {
	if live == 0 {
		return base
	}
	p := int(min(uint64(MaxPercent), (runway*100+live-1)/live))
	return max(p, base)
}

// Keep holds the runway at runway bytes, checking the live heap every interval, until ctx ends.
// It returns at once (doing nothing) when runway is 0 or GOGC is set in the environment.
func Keep(ctx context.Context, runway uint64, interval time.Duration, log *slog.Logger) {
	if runway == 0 || os.Getenv("GOGC") != "" {
		return
	}
	const base = 100
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	cur := base
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			// Moves of under a tenth are not worth a change (the live heap breathes), except
			// back to the base once the live heap outgrew the runway.
			if p := Percent(sample[0].Value.Uint64(), runway, base); p != cur && (p == base || 10*abs(p-cur) > cur) {
				debug.SetGCPercent(p)
				log.Debug("gc runway", "live", sample[0].Value.Uint64(), "GOGC", p)
				cur = p
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func abs(n int) int { return max(n, -n) }

// LimitFromCgroup sets the runtime's memory limit to 90 % of the cgroup's (v2 memory.max, or
// v1 memory.limit_in_bytes) when GOMEMLIMIT is not set, and returns the limit it set (0: none).
func LimitFromCgroup(log *slog.Logger) int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0
	}
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if n := ParseCgroupLimit(string(b)); n > 0 {
			lim := n / 10 * 9
			debug.SetMemoryLimit(lim)
			log.Info("memory limit from the cgroup", "file", f, "cgroup", n, "GOMEMLIMIT", lim)
			return lim
		}
		return 0
	}
	return 0
}

// ParseCgroupLimit reads a cgroup memory limit file's content: bytes, or 0 for none ("max",
// cgroup v1's near-MaxInt64 "unlimited", or anything unreadable).
func ParseCgroupLimit(s string) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 || n >= math.MaxInt64/2 {
		return 0
	}
	return n
}
