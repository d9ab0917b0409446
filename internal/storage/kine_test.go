package storage

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFilesArePrivate: the database (every Secret of every project) is 0600 even in a data
// directory another tool created 0755, and kine's socket lives in the data directory rather
// than the shared temporary directory (findings W1, W12).
func TestFilesArePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A database left by an older version with a wide mode is narrowed too.
	if err := os.WriteFile(filepath.Join(dir, "apoxy.db-wal"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Start(context.Background(), Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, name := range []string{"apoxy.db", "apoxy.db-wal"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	if sock := strings.TrimPrefix(s.Endpoint, "unix://"); filepath.Dir(sock) != dir {
		t.Errorf("kine socket at %s, want inside %s", sock, dir)
	}
}
