// Package admin serves the process's admin listener: /livez, /readyz (200 only when every
// registered check passes), /metrics (Prometheus) and /debug/pprof (Go profiles). It is
// loopback-only by default.
package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Server is the admin listener.
type Server struct {
	mu     sync.RWMutex
	checks map[string]func() error
	http   *http.Server
	ln     net.Listener
}

// New binds addr; call Serve to answer requests. /metrics serves the API server's registry
// and the extra gatherers given.
func New(addr string, gatherers ...prometheus.Gatherer) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin: listen %s: %w", addr, err)
	}
	s := &Server{checks: map[string]func() error{}, ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", s.readyz)
	// One scrape sees the whole process: the API server's metrics (component-base registry)
	// and the data plane's.
	mux.Handle("/metrics", promhttp.HandlerFor(append(prometheus.Gatherers{legacyregistry.DefaultGatherer}, gatherers...), promhttp.HandlerOpts{}))
	// Go profiles of the whole process (CPU, heap, allocs, goroutines), as Envoy's admin offers
	// its own: the admin listener is loopback-only by default.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// AddCheck registers a readiness check; /readyz fails while any check returns an error.
func (s *Server) AddCheck(name string, check func() error) {
	s.mu.Lock()
	s.checks[name] = check
	s.mu.Unlock()
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	names := make([]string, 0, len(s.checks))
	for n := range s.checks {
		names = append(names, n)
	}
	sort.Strings(names)
	var failed []string
	var b strings.Builder
	for _, n := range names {
		if err := s.checks[n](); err != nil {
			failed = append(failed, n)
			fmt.Fprintf(&b, "[-]%s failed: %v\n", n, err)
		} else {
			fmt.Fprintf(&b, "[+]%s ok\n", n)
		}
	}
	s.mu.RUnlock()
	if len(names) == 0 {
		failed = append(failed, "starting")
		b.WriteString("[-]starting\n")
	}
	if len(failed) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "%sreadyz check failed\n", b.String())
		return
	}
	if r.URL.Query().Has("verbose") {
		fmt.Fprint(w, b.String())
	}
	fmt.Fprintln(w, "ok")
}

// Serve answers until ctx is done.
func (s *Server) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.http.Shutdown(sctx)
	}()
	if err := s.http.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
