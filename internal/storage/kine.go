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
	"strings"
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
	sock    string
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
	if err := privateFiles(opts.Dir); err != nil {
		return nil, err
	}
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

	// The socket serves every Secret of every project: it lives in the 0700 data directory
	// (or, when that path is too long for a unix socket, a fresh 0700 temporary directory), so
	// no other local user can connect, and a socket left by a killed process is replaced.
	sock, err := socketPath(opts.Dir)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("storage: %w", err)
	}
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
	return &Store{Endpoint: "unix://" + sock, sock: sock, cancel: cancel, wg: wg, grpc: gs, backend: backend}, nil
}

// privateFiles creates the database file 0600 (SQLite gives its WAL and shared-memory files the
// database's mode) and narrows existing ones: they hold every Secret.
func privateFiles(dir string) error {
	db := filepath.Join(dir, "apoxy.db")
	f, err := os.OpenFile(db, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	f.Close()
	for _, name := range []string{db, db + "-wal", db + "-shm"} {
		if err := os.Chmod(name, 0o600); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("storage: %w", err)
		}
	}
	return nil
}

// maxSocketPath is the longest unix socket path the kernel takes (sun_path less the NUL).
const maxSocketPath = 107

// socketPath picks where kine's socket lives: DIR/kine.sock, or a private temporary directory
// when that path is too long.
func socketPath(dir string) (string, error) {
	if p := filepath.Join(dir, "kine.sock"); len(p) <= maxSocketPath {
		return p, nil
	}
	tmp, err := os.MkdirTemp("", "apoxy-kine-")
	if err != nil {
		return "", err
	}
	return filepath.Join(tmp, "kine.sock"), nil
}

// Close stops serving and closes the database after in-flight writes finish.
func (s *Store) Close() {
	s.grpc.Stop()
	s.cancel()
	s.wg.Wait()
	_ = os.Remove(s.sock)
	if d := filepath.Dir(s.sock); strings.HasPrefix(filepath.Base(d), "apoxy-kine-") {
		_ = os.Remove(d)
	}
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
