// Package loader is the data plane's side of edge functions: it loads a revision's built code
// from its project's artifact store into the runtime it was built for (JavaScript on QuickJS,
// WebAssembly on wazero), and makes what an invocation may use, per the revision's
// capabilities: fetch through the gateway's upstream dialer under the project's destination
// policy, the function's own KV namespace, its environment, and console output into the
// project's log stream (`apoxy logs --function`). It implements filter.Functions.
package loader

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"apoxy.dev/apoxy/internal/accesslog"
	"apoxy.dev/apoxy/internal/function"
	"apoxy.dev/apoxy/internal/function/artifact"
	"apoxy.dev/apoxy/internal/function/js"
	"apoxy.dev/apoxy/internal/function/kv"
	"apoxy.dev/apoxy/internal/function/wasm"
	"apoxy.dev/apoxy/internal/ir"
	"apoxy.dev/apoxy/internal/proxy/ratelimit"
)

// Loader loads and hosts edge functions for every project of the process.
type Loader struct {
	// Dir is the data directory: a project's artifacts are in <Dir>/projects/<p>/functions,
	// compiled WebAssembly is cached in <Dir>/cache/wasm.
	Dir string
	// Dial connects a function's fetches under the destination policy of the project (scope).
	Dial func(ctx context.Context, scope, network, addr string) (net.Conn, error)
	// RootCAs verify fetches over TLS (nil: the system pool).
	RootCAs *x509.CertPool
	// Logs returns a project's log stream (nil: console output goes to Logger only).
	Logs func(project string) *accesslog.Stream
	// KV returns a function's key-value namespace (nil: no store; functions given the kv
	// capability get an error using it).
	KV func(project, function string) function.KV
	// Logger receives what functions log when there is no stream.
	Logger *slog.Logger

	clients sync.Map // scope → *http.Client
}

// Store is a project's artifact store.
func (l *Loader) Store(project string) *artifact.Store {
	return StoreAt(l.Dir, project)
}

// StoreAt is the artifact store of a project under the data directory dir (the builder
// writes where the loader reads).
func StoreAt(dir, project string) *artifact.Store {
	if project == "" {
		project = "_"
	}
	return &artifact.Store{Dir: filepath.Join(dir, "projects", project, "functions")}
}

// Load loads a revision's code into its runtime.
func (l *Loader) Load(ctx context.Context, f *ir.Function) (function.Function, error) {
	code, err := l.Store(f.Scope).Get(f.Digest)
	if err != nil {
		return nil, err
	}
	mode := function.Mode(f.Mode)
	limits := function.Limits{Timeout: time.Duration(f.Timeout)}
	switch f.Runtime {
	case "js":
		return js.Load(ctx, code, mode, limits)
	case "wasm":
		opts := []wasm.Option{wasm.WithConfig([]byte(f.Config))}
		if l.Dir != "" {
			opts = append(opts, wasm.WithCompilationCacheDir(filepath.Join(l.Dir, "cache", "wasm")))
		}
		return wasm.Load(ctx, code, mode, limits, opts...)
	}
	return nil, fmt.Errorf("unknown runtime %q", f.Runtime)
}

// Host returns what f's invocations may use. KV is in store when it is a Redis (the one
// the project's Proxy names), else in the process's store (Loader.KV).
func (l *Loader) Host(f *ir.Function, store ratelimit.Store) *function.Host {
	h := &function.Host{Env: f.Env, Log: l.logger(f)}
	if f.Fetch {
		c := l.client(f.Scope)
		h.Fetch = func(ctx context.Context, req *http.Request) (*http.Response, error) {
			return c.Do(req.WithContext(ctx))
		}
	}
	if r, ok := store.(interface{ Client() *redis.Client }); ok && f.KV {
		h.KV = kv.NewRedis(r.Client(), f.Scope).Namespace(f.Name)
	} else if f.KV && l.KV != nil {
		h.KV = l.KV(f.Scope, f.Name)
	}
	return h
}

// client is a project's HTTP client for function fetches: the gateway's dialer (destination
// policy, and the tunnel dialer later), no redirects followed (a function sees them, as
// Workers' fetch with redirect: "manual" does; the runtime may follow them itself).
func (l *Loader) client(scope string) *http.Client {
	if c, ok := l.clients.Load(scope); ok {
		return c.(*http.Client)
	}
	tr := &http.Transport{
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		TLSClientConfig:       &tls.Config{RootCAs: l.RootCAs},
	}
	if l.Dial != nil {
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return l.Dial(ctx, scope, network, addr)
		}
	}
	c := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	got, _ := l.clients.LoadOrStore(scope, c)
	return got.(*http.Client)
}

// logger sends a function's console output to its project's stream as JSON lines:
// {"time","level","function","revision","message"}.
func (l *Loader) logger(f *ir.Function) func(slog.Level, string) {
	var stream *accesslog.Stream
	if l.Logs != nil {
		stream = l.Logs(f.Scope)
	}
	log := l.Logger
	if log == nil {
		log = slog.Default()
	}
	return func(level slog.Level, msg string) {
		if stream == nil {
			log.Log(context.Background(), level, msg, "function", f.Name, "revision", f.Revision, "project", f.Scope)
			return
		}
		now := time.Now()
		line, _ := json.Marshal(struct {
			Time     string `json:"time"`
			Level    string `json:"level"`
			Function string `json:"function"`
			Revision string `json:"revision"`
			Message  string `json:"message"`
		}{now.UTC().Format("2006-01-02T15:04:05.000000Z"), level.String(), f.Name, f.Revision, msg})
		stream.Add(accesslog.Entry{Time: now, Function: f.Name, Line: append(line, '\n')})
	}
}
