package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/service"
	"go.opentelemetry.io/collector/service/telemetry"
	"go.uber.org/zap"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter"

	"apoxy.dev/apoxy/internal/version"
)

// DefaultQueueSize is how many Consume* calls per signal wait for the pipelines before
// further ones are dropped.
const DefaultQueueSize = 512

// Config is what one project's collector runs.
type Config struct {
	// YAML is the project's collector configuration in the collector's own format
	// (receivers:, processors:, exporters:, service: pipelines:), as Validate accepts it.
	// Empty means a generated pipeline per signal for the Sinks.
	YAML []byte
	// Sinks are export targets configured outside the YAML; each becomes an exporter added to
	// every pipeline of the signals it takes.
	Sinks []Sink
	// FileDir is the directory the project's file exporters write under; "" refuses the file
	// exporter. It should belong to the server and the project alone.
	FileDir string
	// Logger receives the collector's logs (its Info as Debug); nil discards them.
	Logger *slog.Logger
	// AllowPrivateEndpoints lets exporters reach loopback, private and link-local addresses
	// (tests; a single-tenant install exporting to its own network). By default a tenant's
	// exporter may only dial public addresses.
	AllowPrivateEndpoints bool
	// QueueSize is the per-signal queue in front of the pipelines, in Consume* calls; zero
	// means DefaultQueueSize.
	QueueSize int
}

// Collector is one project's OpenTelemetry Collector, built into the server from the upstream
// collector modules. The gateway pushes the project's telemetry into it with Consume*; it
// never opens a port, handles signals, or sets OpenTelemetry globals.
type Collector struct {
	svc    *service.Service
	cancel context.CancelFunc

	traces  *queue[ptrace.Traces]
	logs    *queue[plog.Logs]
	metrics *queue[pmetric.Metrics]

	guard    *egressGuard
	redact   func(string) string
	recMu    sync.Mutex
	recs     map[component.ID]*recorder
	fatal    chan error
	log      *slog.Logger
	stopOnce sync.Once
	stopErr  error
}

// Start checks cfg, builds the collector's pipelines and starts them. It returns once the
// collector takes data, or with an error having left nothing running. ctx bounds the start.
func Start(ctx context.Context, cfg Config) (*Collector, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Collector{
		traces:  tracesQueue(),
		logs:    logsQueue(),
		metrics: metricsQueue(),
		recs:    map[component.ID]*recorder{},
		guard:   &egressGuard{allowPrivate: cfg.AllowPrivateEndpoints},
		// Components report fatal errors here; ours do not, and the buffer keeps one that does
		// from blocking (Stop logs what arrived).
		fatal: make(chan error, 8),
		log:   log,
	}
	fs := newFactorySet(c)
	pl, err := compile(cfg.YAML, cfg.Sinks, cfg.FileDir, fs)
	if err != nil {
		return nil, err
	}
	if len(pl.pipelines) == 0 {
		return nil, &ConfigError{Problems: []string{"nothing to run: the YAML is empty and there are no sinks"}}
	}
	c.redact = newRedactor(pl.secrets)
	for id, abs := range pl.files {
		if err := prepareFile(cfg.FileDir, abs); err != nil {
			return nil, &ConfigError{Problems: []string{fmt.Sprintf("exporters.%s.path: %v", id, err)}}
		}
		pl.exporters[id].(*fileexporter.Config).Path = abs
	}
	// Status lists the exporters some pipeline uses (the others are never built).
	for _, pc := range pl.pipelines {
		for _, id := range pc.Exporters {
			c.recorder(id).st.Sink = pl.sinkOf[id]
		}
	}
	for _, w := range pl.warnings {
		log.Warn("collector configuration: " + w)
	}

	zl := newZapLogger(log.Handler(), c.redact)
	tf := telemetry.NewFactory(
		func() component.Config { return &struct{}{} },
		// The collector's own logs go to zl; its meter and tracer providers stay the no-ops the
		// factory gives by default: no Prometheus endpoint, nothing exported, no globals.
		telemetry.WithCreateLogger(func(context.Context, telemetry.LoggerSettings, component.Config) (*zap.Logger, component.ShutdownFunc, error) {
			return zl, nil, nil
		}),
	)
	set := service.Settings{
		BuildInfo: component.BuildInfo{
			Command:     "apoxy",
			Description: "Apoxy embedded OpenTelemetry Collector",
			Version:     version.Version,
		},
		ReceiversConfigs:    pl.receivers,
		ReceiversFactories:  fs.receivers,
		ProcessorsConfigs:   pl.processors,
		ProcessorsFactories: fs.processors,
		ExportersConfigs:    pl.exporters,
		ExportersFactories:  fs.exporters,
		AsyncErrorChannel:   c.fatal,
		TelemetryFactory:    tf,
	}
	svc, err := service.New(ctx, set, service.Config{Telemetry: tf.CreateDefaultConfig(), Pipelines: pl.pipelines})
	if err != nil {
		return nil, fmt.Errorf("collector: %s", c.redact(err.Error()))
	}
	if err := svc.Start(ctx); err != nil {
		serr := svc.Shutdown(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("collector: %s", c.redact(errors.Join(err, serr).Error()))
	}
	c.svc = svc

	runCtx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	size := cfg.QueueSize
	if size <= 0 {
		size = DefaultQueueSize
	}
	// A goroutine only for a signal some pipeline takes.
	if c.traces.live.Load() != nil {
		c.traces.run(runCtx, size)
	}
	if c.logs.live.Load() != nil {
		c.logs.run(runCtx, size)
	}
	if c.metrics.live.Load() != nil {
		c.metrics.run(runCtx, size)
	}
	return c, nil
}

// recorder returns the status recorder of an exporter, creating it.
func (c *Collector) recorder(id component.ID) *recorder {
	c.recMu.Lock()
	defer c.recMu.Unlock()
	r, ok := c.recs[id]
	if !ok {
		r = &recorder{
			redact:     func(s string) string { return c.redact(s) },
			spanPrefix: "exporter/" + id.String() + "/",
			st:         ExporterStatus{Name: id.String()},
		}
		c.recs[id] = r
	}
	return r
}

// Stop stops taking data, delivers what is queued, flushes the pipelines and stops every
// component. It returns when done or when ctx ends (what is still queued then is dropped).
// It is idempotent.
func (c *Collector) Stop(ctx context.Context) error {
	c.stopOnce.Do(func() {
		queues := []interface {
			close()
			finished() <-chan struct{}
		}{c.traces, c.logs, c.metrics}
		for _, q := range queues {
			q.close()
		}
		// Wait for the queued data to reach the pipelines; once ctx ends, stop delivering
		// (a delivery blocked in a pipeline is freed when its exporter shuts down below).
	wait:
		for _, q := range queues {
			select {
			case <-q.finished():
			case <-ctx.Done():
				break wait
			}
		}
		c.cancel()
		c.stopErr = c.svc.Shutdown(ctx)
		c.guard.closeIdle()
		if c.stopErr != nil {
			c.stopErr = fmt.Errorf("collector: %s", c.redact(c.stopErr.Error()))
		}
		for {
			select {
			case err := <-c.fatal:
				c.log.Error("collector component failed", "error", c.redact(err.Error()))
				continue
			default:
			}
			break
		}
	})
	return c.stopErr
}

// finished is closed when the queue's goroutine has exited (at once if it never ran).
func (q *queue[T]) finished() <-chan struct{} {
	if q.done == nil {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return q.done
}

// ConsumeTraces queues td for every traces pipeline and returns at once; td must not be used
// by the caller afterwards. It returns ErrDropped when the queue is full or the collector is
// stopped, and nil (dropping td, uncounted) when no pipeline takes traces.
func (c *Collector) ConsumeTraces(_ context.Context, td ptrace.Traces) error {
	return c.traces.push(td)
}

// ConsumeLogs is ConsumeTraces for logs.
func (c *Collector) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	return c.logs.push(ld)
}

// ConsumeMetrics is ConsumeTraces for metrics.
func (c *Collector) ConsumeMetrics(_ context.Context, md pmetric.Metrics) error {
	return c.metrics.push(md)
}

// Wants says whether a pipeline takes the signal, so that the caller can skip building data
// nobody exports. False once stopped.
func (c *Collector) Wants(s Signal) bool {
	switch s {
	case Traces:
		return c.traces.wanted()
	case Logs:
		return c.logs.wanted()
	case Metrics:
		return c.metrics.wanted()
	}
	return false
}

// Dropped is how many items of the signal (spans, log records, metric data points) Consume*
// dropped because the queue was full or the collector stopped.
func (c *Collector) Dropped(s Signal) uint64 {
	switch s {
	case Traces:
		return c.traces.dropped.Load()
	case Logs:
		return c.logs.dropped.Load()
	case Metrics:
		return c.metrics.dropped.Load()
	}
	return 0
}

// Status reports every exporter's last success and last error, sorted by name.
func (c *Collector) Status() []ExporterStatus {
	c.recMu.Lock()
	recs := make([]*recorder, 0, len(c.recs))
	for _, r := range c.recs {
		recs = append(recs, r)
	}
	c.recMu.Unlock()
	out := make([]ExporterStatus, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.get())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Validate checks a project's collector YAML before it is stored: syntax, component types,
// references between pipelines and components, refused receivers and settings, file paths
// escaping fileDir, and each component's own config validation. Each problem names its path
// in the YAML and the offending token (see ConfigError). It neither dials, opens files nor
// starts goroutines.
func Validate(yaml []byte, fileDir string) error {
	_, err := ValidateWithWarnings(yaml, fileDir)
	return err
}

// ValidateWithWarnings is Validate, also returning what is accepted but ignored (extensions,
// service.telemetry, otlp receiver endpoints) for the API server to pass on as warnings.
func ValidateWithWarnings(yaml []byte, fileDir string) (warnings []string, err error) {
	pl, err := compile(yaml, nil, fileDir, newFactorySet(nil))
	if err != nil {
		return nil, err
	}
	return pl.warnings, nil
}

// ValidateSinks checks Sinks the way Start would (names, kinds, credentials present,
// endpoints, the exporter config they map to), without starting anything.
func ValidateSinks(sinks []Sink) error {
	if len(sinks) == 0 {
		return nil
	}
	_, err := compile(nil, sinks, "", newFactorySet(nil))
	return err
}
