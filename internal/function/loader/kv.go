package loader

import (
	"context"
	"os"
	"path/filepath"
	"sync"

	"apoxy.dev/apoxy/internal/function"
	"apoxy.dev/apoxy/internal/function/kv"
)

// SQLiteKV keeps each project's function KV in its own SQLite file,
// <Dir>/projects/<project>/kv.db, opened when a function first needs it.
type SQLiteKV struct {
	Dir string

	mu     sync.Mutex
	stores map[string]*kv.Store
}

// Namespace returns a function's namespace of its project's store. A store that cannot be
// opened fails each call with the reason (the function sees an error; the gateway goes on).
func (s *SQLiteKV) Namespace(project, fn string) function.KV {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.stores[project]; st != nil {
		return st.Namespace(fn)
	}
	dir := filepath.Join(s.Dir, "projects", project)
	if project == "" {
		dir = filepath.Join(s.Dir, "projects", "_")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return failedKV{err}
	}
	st, err := kv.Open(filepath.Join(dir, "kv.db"))
	if err != nil {
		return failedKV{err}
	}
	if s.stores == nil {
		s.stores = map[string]*kv.Store{}
	}
	s.stores[project] = st
	return st.Namespace(fn)
}

// Close closes every store.
func (s *SQLiteKV) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, st := range s.stores {
		st.Close()
		delete(s.stores, p)
	}
	return nil
}

// failedKV is a store that could not be opened.
type failedKV struct{ err error }

func (f failedKV) Get(context.Context, string) (function.KVValue, bool, error) {
	return function.KVValue{}, false, f.err
}
func (f failedKV) Put(context.Context, string, []byte, function.KVPut) error { return f.err }
func (f failedKV) Delete(context.Context, string) error                      { return f.err }
func (f failedKV) List(context.Context, string, string, int) ([]function.KVKey, string, error) {
	return nil, "", f.err
}
