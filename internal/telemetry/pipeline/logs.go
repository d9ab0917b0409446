package pipeline

import (
	"context"
	"encoding/hex"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"apoxy.dev/apoxy/internal/proxy"
)

// Log lines are gathered per pipeline and handed to its collector as one payload every
// logFlushInterval, or as soon as logMaxBatch lines wait: a line then costs a log record,
// not a payload, a resource and a queue hand-off of its own.
const (
	logFlushInterval = 200 * time.Millisecond
	logMaxBatch      = 1024
)

// logBatch is the payload being gathered: a resource per Gateway, the lines under it.
type logBatch struct {
	mu       sync.Mutex
	ld       plog.Logs
	gateways map[string]plog.LogRecordSlice
	n        int
	// full wakes the flusher when logMaxBatch lines wait.
	full chan struct{}
}

func newLogBatch() *logBatch { return &logBatch{full: make(chan struct{}, 1)} }

// add turns a line into a log record of the batch. It never blocks on the collector.
func (b *logBatch) add(l proxy.LogLine) {
	body := string(l.Line) // the line's buffer is reused once this returns
	if n := len(body); n > 0 && body[n-1] == '\n' {
		body = body[:n-1]
	}
	observed := pcommon.NewTimestampFromTime(time.Now())
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gateways == nil {
		b.ld, b.gateways = plog.NewLogs(), map[string]plog.LogRecordSlice{}
	}
	recs, ok := b.gateways[l.Gateway]
	if !ok {
		rl := b.ld.ResourceLogs().AppendEmpty()
		ra := rl.Resource().Attributes()
		ra.PutStr("service.name", "apoxy-gateway")
		ra.PutStr("apoxy.project", l.Project)
		ra.PutStr("apoxy.gateway", l.Gateway)
		recs = rl.ScopeLogs().AppendEmpty().LogRecords()
		b.gateways[l.Gateway] = recs
	}
	lr := recs.AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(l.Time))
	lr.SetObservedTimestamp(observed)
	lr.Body().SetStr(body)
	lr.SetSeverityNumber(plog.SeverityNumberInfo)
	if l.Status >= 500 {
		lr.SetSeverityNumber(plog.SeverityNumberError)
	}
	a := lr.Attributes()
	a.PutStr("log.type", l.Type)
	if l.Route != "" {
		a.PutStr("apoxy.route", l.Route)
	}
	if l.Status != 0 {
		a.PutInt("http.response.status_code", int64(l.Status))
	}
	if l.TraceID != "" {
		var tid pcommon.TraceID
		if n, err := hex.Decode(tid[:], []byte(l.TraceID)); err == nil && n == len(tid) {
			lr.SetTraceID(tid)
		}
	}
	b.n++
	if b.n == logMaxBatch {
		select {
		case b.full <- struct{}{}:
		default:
		}
	}
}

// take returns the gathered lines and starts a new batch (ok false: none).
func (b *logBatch) take() (plog.Logs, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n == 0 {
		return plog.Logs{}, false
	}
	ld := b.ld
	b.ld, b.gateways, b.n = plog.Logs{}, nil, 0
	return ld, true
}

// flushLogs hands a pipeline's lines to its collector until the pipeline stops, then hands
// over the last ones.
func (p *pipeline) flushLogs() {
	defer p.wg.Done()
	t := time.NewTicker(logFlushInterval)
	defer t.Stop()
	for {
		stop := false
		select {
		case <-p.stop:
			stop = true
		case <-t.C:
		case <-p.logs.full:
		}
		if ld, ok := p.logs.take(); ok {
			p.c.ConsumeLogs(context.Background(), ld)
		}
		if stop {
			return
		}
	}
}
