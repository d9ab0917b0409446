// Package storage runs the embedded datastore: kine over SQLite, exposed as an etcd3 endpoint on
// a unix socket so the API server's standard etcd3 storage talks to it unchanged. Only kine's
// SQLite driver is linked ("lean" wiring), not its all-drivers endpoint package.
package storage

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/k3s-io/kine/pkg/drivers"
	"github.com/k3s-io/kine/pkg/drivers/sqlite"
	kineserver "github.com/k3s-io/kine/pkg/server"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
)

// Options configure the datastore.
type Options struct {
	// Dir holds the database file (apoxy.db) and the socket.
	Dir string
	// Synchronous is the SQLite synchronous mode: FULL (default) survives power loss, NORMAL
	// survives process crashes only but writes faster.
	Synchronous string
}

// Store is a running datastore.
type Store struct {
	// Endpoint is the etcd3 client URL ("unix://...").
	Endpoint string

	cancel  context.CancelFunc
	wg      *sync.WaitGroup
	grpc    *grpc.Server
	backend kineserver.Backend
}

// Start opens (or creates) the database and serves it. Stop it with Close.
func Start(ctx context.Context, opts Options) (*Store, error) {
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	mode := opts.Synchronous
	if mode == "" {
		mode = "FULL"
	}
	logrus.SetLevel(logrus.WarnLevel)
	dsn := filepath.Join(opts.Dir, "apoxy.db") +
		"?_journal_mode=WAL&_busy_timeout=30000&_synchronous=" + mode + "&_txlock=immediate&_stmt_cache_size=20&cache=shared"

	ctx, cancel := context.WithCancel(ctx)
	wg := &sync.WaitGroup{}
	_, backend, err := sqlite.New(ctx, wg, &drivers.Config{
		DataSourceName: dsn,
		// kine's library zero values are rejected; these are its CLI defaults. Compaction is
		// kine's (every 5 minutes, keeping 1000 revisions); the API server's compactor is off.
		CompactInterval:  5 * time.Minute,
		CompactTimeout:   5 * time.Second,
		CompactMinRetain: 1000,
		CompactBatchSize: 1000,
		PollBatchSize:    500,
		PollInterval:     time.Second,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("storage: open %s: %w", opts.Dir, err)
	}
	if err := backend.Start(ctx); err != nil {
		cancel()
		return nil, fmt.Errorf("storage: start: %w", err)
	}

	// A short path: unix socket paths are limited to ~108 bytes.
	sock := filepath.Join(os.TempDir(), fmt.Sprintf("apoxy-kine-%d-%d.sock", os.Getpid(), time.Now().UnixNano()))
	_ = os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("storage: listen: %w", err)
	}
	gs := grpc.NewServer()
	kineserver.New(backend, "unix", 5*time.Second, "3.6.11").Register(gs)
	go func() {
		if err := gs.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			logrus.Errorf("kine: %v", err)
		}
	}()
	return &Store{Endpoint: "unix://" + sock, cancel: cancel, wg: wg, grpc: gs, backend: backend}, nil
}

// Close stops serving and closes the database after in-flight writes finish.
func (s *Store) Close() {
	s.grpc.Stop()
	s.cancel()
	s.wg.Wait()
}

// DeletePrefix deletes every key under prefix (a project's data when the project is deleted).
// It returns how many keys were deleted.
func (s *Store) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	end := []byte(prefix)
	end[len(end)-1]++
	_, kvs, err := s.backend.List(ctx, prefix, string(end), 0, 0, false)
	if err != nil {
		return 0, fmt.Errorf("storage: list %s: %w", prefix, err)
	}
	n := 0
	for _, kv := range kvs {
		if _, _, ok, err := s.backend.Delete(ctx, kv.Key, kv.ModRevision); err != nil {
			return n, fmt.Errorf("storage: delete %s: %w", kv.Key, err)
		} else if ok {
			n++
		}
	}
	return n, nil
}
