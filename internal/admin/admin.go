// Package admin serves the process's admin listener: /livez, /readyz (200 only when every
// component of the process is ready, one line per component), /metrics (Prometheus) and
// /debug/pprof (Go profiles). It is loopback-only by default. The listener is itself a
// component (internal/component), started first and stopped last, so /readyz answers while
// the rest starts and says 503 while it shuts down.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/component-base/metrics/legacyregistry"

	"apoxy.dev/apoxy/internal/component"
)

// shutdownTimeout bounds how long Stop waits for in-flight admin requests (a pprof profile
// can take longer; it is cut).
const shutdownTimeout = 2 * time.Second

// Options configure the admin listener.
type Options struct {
	// Addr is the listen address, e.g. "127.0.0.1:9901" (port 0 picks a free port).
	Addr string
	// Readiness reports every component of the process, in order, for /readyz; nil or an
	// empty list is "starting" (not ready).
	Readiness func() []component.Status
	// Gatherers are served on /metrics besides the API server's registry (the data plane's).
	Gatherers []prometheus.Gatherer
	// Pages are served below their prefixes (e.g. "/console/": the web console, which signs
	// its users in itself).
	Pages  map[string]http.Handler
	Logger *slog.Logger
}

// Server is the admin listener. It implements component.Component.
type Server struct {
	opts Options
	http *http.Server
	ln   net.Listener

	mu      sync.Mutex
	serving bool
	err     error // why Serve ended, if it failed
	stopper component.Stopper
}

// New binds opts.Addr (so its address is known, and kept from Backends, before anything
// starts); Start serves it.
func New(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("admin: listen %s: %w", opts.Addr, err)
	}
	s := &Server{opts: opts, ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", s.readyz)
	// One scrape sees the whole process: the API server's metrics (component-base registry)
	// and the data plane's.
	mux.Handle("/metrics", promhttp.HandlerFor(append(prometheus.Gatherers{legacyregistry.DefaultGatherer}, opts.Gatherers...), promhttp.HandlerOpts{EnableOpenMetrics: true}))
	// Go profiles of the whole process (CPU, heap, allocs, goroutines), as Envoy's admin offers
	// its own: the admin listener is loopback-only by default.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	for prefix, h := range opts.Pages {
		mux.Handle(prefix, h)
	}
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Name is "admin".
func (s *Server) Name() string { return "admin" }

// Start serves the bound listener; it returns at once (the socket already accepts).
func (s *Server) Start(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopper.Stopping() {
		return errors.New("admin: stopped")
	}
	s.serving = true
	go func() {
		err := s.http.Serve(s.ln)
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.Logger.Error("admin listener", "err", err)
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
		}
	}()
	return nil
}

// Ready is nil while the listener serves.
func (s *Server) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopper.Stopping():
		return errors.New("stopped")
	case s.err != nil:
		return s.err
	case !s.serving:
		return errors.New("not serving")
	}
	return nil
}

// Stop stops accepting, lets in-flight requests finish for up to 2 s, then closes what is
// left. Without Start, it closes the listener.
func (s *Server) Stop(ctx context.Context) error {
	return s.stopper.Stop(ctx, func() error {
		s.mu.Lock()
		serving := s.serving
		s.mu.Unlock()
		if !serving {
			return s.ln.Close()
		}
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		err := s.http.Shutdown(sctx)
		if err != nil {
			err = s.http.Close()
		}
		// Serve may not have taken the listener yet (then it closes it only when it does):
		// the socket is free once Stop returns.
		s.ln.Close()
		return err
	})
}

// readyz answers in Kubernetes' style: 200 "ok" when every component is ready (with
// ?verbose, one "[+]name ok" line each first), else 503 with a "[+]name ok" or
// "[-]name failed: reason" line per component.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	var statuses []component.Status
	if s.opts.Readiness != nil {
		statuses = s.opts.Readiness()
	}
	failed := len(statuses) == 0
	var b strings.Builder
	for _, st := range statuses {
		if st.Err != nil {
			failed = true
			// One line per component, whatever the error holds (errors.Join uses newlines).
			fmt.Fprintf(&b, "[-]%s failed: %s\n", st.Name, strings.ReplaceAll(st.Err.Error(), "\n", "; "))
		} else {
			fmt.Fprintf(&b, "[+]%s ok\n", st.Name)
		}
	}
	if len(statuses) == 0 {
		b.WriteString("[-]starting\n")
	}
	if failed {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "%sreadyz check failed\n", b.String())
		return
	}
	if r.URL.Query().Has("verbose") {
		fmt.Fprint(w, b.String())
	}
	fmt.Fprintln(w, "ok")
}
