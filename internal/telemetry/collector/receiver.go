package collector

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
)

// ErrDropped is what Consume* return when the data was dropped: the signal's queue was full
// (a pipeline is not keeping up) or the collector is stopped. Callers on a request path
// ignore it; Dropped counts the items.
var ErrDropped = errors.New("telemetry dropped: collector queue full or stopped")

// inprocConfig is the configuration of the in-process receiver: whatever the YAML said under
// an otlp receiver is ignored, so it has no fields.
type inprocConfig struct{}

// newInprocFactory makes the factory of type "otlp" that stands for every otlp receiver of a
// tenant's YAML. Its receivers open nothing: while started they attach their pipeline's
// first consumer to the collector's queue of that signal.
func newInprocFactory(c *Collector) receiver.Factory {
	return receiver.NewFactory(component.MustNewType("otlp"),
		func() component.Config { return &inprocConfig{} },
		receiver.WithTraces(func(_ context.Context, _ receiver.Settings, _ component.Config, next consumer.Traces) (receiver.Traces, error) {
			return &inprocReceiver{attach: func() func() { return c.traces.attach(next.ConsumeTraces) }}, nil
		}, component.StabilityLevelStable),
		receiver.WithLogs(func(_ context.Context, _ receiver.Settings, _ component.Config, next consumer.Logs) (receiver.Logs, error) {
			return &inprocReceiver{attach: func() func() { return c.logs.attach(next.ConsumeLogs) }}, nil
		}, component.StabilityLevelStable),
		receiver.WithMetrics(func(_ context.Context, _ receiver.Settings, _ component.Config, next consumer.Metrics) (receiver.Metrics, error) {
			return &inprocReceiver{attach: func() func() { return c.metrics.attach(next.ConsumeMetrics) }}, nil
		}, component.StabilityLevelStable),
	)
}

// inprocReceiver is attached to its signal's queue between Start and Shutdown.
type inprocReceiver struct {
	attach func() (detach func())
	detach func()
}

// Start implements component.Component.
func (r *inprocReceiver) Start(context.Context, component.Host) error {
	r.detach = r.attach()
	return nil
}

// Shutdown implements component.Component.
func (r *inprocReceiver) Shutdown(context.Context) error {
	if r.detach != nil {
		r.detach()
		r.detach = nil
	}
	return nil
}

// queue is one signal's bounded queue between the callers of Consume* and the pipelines. One
// goroutine (started only for a signal with a pipeline) delivers each batch to every attached
// receiver's pipeline.
type queue[T any] struct {
	ch      chan T
	stop    chan struct{}
	done    chan struct{}
	closed  atomic.Bool
	dropped atomic.Uint64
	items   func(T) int
	clone   func(T) T

	mu        sync.Mutex
	consumers []*func(context.Context, T) error
	// live is a snapshot of consumers for the delivering goroutine and Wants.
	live atomic.Pointer[[]func(context.Context, T) error]
}

func newQueue[T any](items func(T) int, clone func(T) T) *queue[T] {
	return &queue[T]{items: items, clone: clone}
}

// attach adds a pipeline's first consumer; the returned func removes it.
func (q *queue[T]) attach(f func(context.Context, T) error) func() {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := &f
	q.consumers = append(q.consumers, p)
	q.publish()
	return func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.consumers = slices.DeleteFunc(q.consumers, func(e *func(context.Context, T) error) bool { return e == p })
		q.publish()
	}
}

func (q *queue[T]) publish() {
	l := make([]func(context.Context, T) error, len(q.consumers))
	for i, p := range q.consumers {
		l[i] = *p
	}
	q.live.Store(&l)
}

// wanted is true while the queue runs and a pipeline takes its signal.
func (q *queue[T]) wanted() bool {
	if q.ch == nil || q.closed.Load() {
		return false
	}
	l := q.live.Load()
	return l != nil && len(*l) > 0
}

// push queues v without blocking.
func (q *queue[T]) push(v T) error {
	if q.ch == nil {
		// No pipeline takes this signal: not a loss worth counting.
		return nil
	}
	if q.closed.Load() {
		q.dropped.Add(uint64(q.items(v)))
		return ErrDropped
	}
	select {
	case q.ch <- v:
		return nil
	default:
		q.dropped.Add(uint64(q.items(v)))
		return ErrDropped
	}
}

// run starts the delivering goroutine with room for size batches.
func (q *queue[T]) run(ctx context.Context, size int) {
	q.ch = make(chan T, size)
	q.stop = make(chan struct{})
	q.done = make(chan struct{})
	go func() {
		defer close(q.done)
		for {
			select {
			case v := <-q.ch:
				q.deliver(ctx, v)
			case <-q.stop:
				// Deliver what was queued before Stop, unless Stop runs out of time.
				for {
					select {
					case v := <-q.ch:
						if ctx.Err() != nil {
							q.dropped.Add(uint64(q.items(v)))
							continue
						}
						q.deliver(ctx, v)
					default:
						return
					}
				}
			}
		}
	}()
}

// deliver hands v to every attached pipeline, cloning for all but the last because a pipeline
// may modify what it is given.
func (q *queue[T]) deliver(ctx context.Context, v T) {
	l := q.live.Load()
	if l == nil {
		return
	}
	cs := *l
	for i, f := range cs {
		d := v
		if i < len(cs)-1 {
			d = q.clone(v)
		}
		// A pipeline's error (the memory limiter refusing, an exporter without a queue failing)
		// is already counted by that pipeline or recorded in Status.
		_ = f(ctx, d)
	}
}

// close stops taking data; the goroutine delivers what is queued and exits.
func (q *queue[T]) close() {
	if q.closed.Swap(true) || q.stop == nil {
		return
	}
	close(q.stop)
}

func tracesQueue() *queue[ptrace.Traces] {
	return newQueue(func(t ptrace.Traces) int { return t.SpanCount() }, func(t ptrace.Traces) ptrace.Traces {
		c := ptrace.NewTraces()
		t.CopyTo(c)
		return c
	})
}

func logsQueue() *queue[plog.Logs] {
	return newQueue(func(l plog.Logs) int { return l.LogRecordCount() }, func(l plog.Logs) plog.Logs {
		c := plog.NewLogs()
		l.CopyTo(c)
		return c
	})
}

func metricsQueue() *queue[pmetric.Metrics] {
	return newQueue(func(m pmetric.Metrics) int { return m.DataPointCount() }, func(m pmetric.Metrics) pmetric.Metrics {
		c := pmetric.NewMetrics()
		m.CopyTo(c)
		return c
	})
}
