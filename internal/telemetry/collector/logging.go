package collector

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// slogCore is a zap core writing to a slog.Handler: the collector's components log through
// zap, the server through slog. The collector's Info is the server's Debug (start-up chatter
// of every tenant's collector is not news); Warn and Error stay what they are. Every message
// and string field goes through redact first.
type slogCore struct {
	h      slog.Handler
	redact func(string) string
	limit  *logLimit
	attrs  []slog.Attr
}

// newZapLogger returns the zap logger the collector's components log to, bridged to h and
// rate-limited: a sink that is down logs for every batch, and a thousand tenants' collectors
// must not flood the server log. (zap's sampler would do, but costs 450 KiB of counters per
// logger.)
func newZapLogger(h slog.Handler, redact func(string) string) *zap.Logger {
	return zap.New(&slogCore{h: h, redact: redact, limit: &logLimit{}})
}

// logLimit lets logBurst entries through, then one per logEvery, shared by every core derived
// from one logger (With).
type logLimit struct {
	mu      sync.Mutex
	tokens  float64
	last    time.Time
	dropped int
}

const (
	logBurst = 20
	logEvery = 100 * time.Millisecond
)

// allow takes a token; when it lets an entry through after dropping some, it says how many.
func (l *logLimit) allow(now time.Time) (ok bool, dropped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last.IsZero() {
		l.tokens = logBurst
	} else {
		l.tokens = min(logBurst, l.tokens+float64(now.Sub(l.last))/float64(logEvery))
	}
	l.last = now
	if l.tokens < 1 {
		l.dropped++
		return false, 0
	}
	l.tokens--
	dropped, l.dropped = l.dropped, 0
	return true, dropped
}

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l >= zapcore.ErrorLevel:
		return slog.LevelError
	case l >= zapcore.WarnLevel:
		return slog.LevelWarn
	default:
		return slog.LevelDebug
	}
}

// Enabled implements zapcore.Core.
func (c *slogCore) Enabled(l zapcore.Level) bool {
	return l >= zapcore.InfoLevel && c.h.Enabled(context.Background(), slogLevel(l))
}

// With implements zapcore.Core.
func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{h: c.h, redact: c.redact, limit: c.limit, attrs: append(cloneAttrs(c.attrs), c.convert(fields)...)}
}

// Check implements zapcore.Core.
func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

// Write implements zapcore.Core.
func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	ok, dropped := c.limit.allow(e.Time)
	if !ok {
		return nil
	}
	r := slog.NewRecord(e.Time, slogLevel(e.Level), c.redact(e.Message), 0)
	if dropped > 0 {
		r.AddAttrs(slog.Int("dropped_log_entries", dropped))
	}
	r.AddAttrs(c.attrs...)
	if e.LoggerName != "" {
		r.AddAttrs(slog.String("logger", e.LoggerName))
	}
	r.AddAttrs(c.convert(fields)...)
	return c.h.Handle(context.Background(), r)
}

// Sync implements zapcore.Core.
func (c *slogCore) Sync() error { return nil }

// convert turns zap fields into slog attributes, through zap's own map encoder so that every
// field type (errors, durations, objects) comes out as zap would print it.
func (c *slogCore) convert(fields []zapcore.Field) []slog.Attr {
	if len(fields) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	keys := make([]string, 0, len(enc.Fields))
	for k := range enc.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]slog.Attr, 0, len(keys))
	for _, k := range keys {
		out = append(out, slog.Any(k, c.value(enc.Fields[k])))
	}
	return out
}

func (c *slogCore) value(v any) any {
	switch t := v.(type) {
	case string:
		return c.redact(t)
	case error:
		return c.redact(t.Error())
	case fmt.Stringer:
		return c.redact(t.String())
	case map[string]any, []any:
		return c.redact(fmt.Sprint(t))
	default:
		return t
	}
}

func cloneAttrs(a []slog.Attr) []slog.Attr { return append([]slog.Attr(nil), a...) }

// newRedactor returns a function replacing each secret (4 bytes or longer) with "[REDACTED]".
func newRedactor(secrets []string) func(string) string {
	var pairs []string
	seen := map[string]bool{}
	// Longest first, so that a secret containing another is replaced whole.
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	for _, s := range secrets {
		if len(s) < 4 || seen[s] {
			continue
		}
		seen[s] = true
		pairs = append(pairs, s, "[REDACTED]")
	}
	if len(pairs) == 0 {
		return func(s string) string { return s }
	}
	r := strings.NewReplacer(pairs...)
	return r.Replace
}
