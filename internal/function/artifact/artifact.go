// Package artifact stores built edge functions by content: a module is written once under its
// sha256 digest and read back by it, so a revision's status names exactly the bytes that
// serve, and a rebuild that yields the same bytes costs no space. The builder writes; the data
// plane reads. One Store per project directory keeps tenants' code apart.
package artifact

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Store is a directory of artifacts, <Dir>/sha256/<hex>.
type Store struct {
	Dir string
}

// ErrNotFound is a digest with no artifact (never built here, or the directory was wiped).
var ErrNotFound = errors.New("artifact: not found")

// Digest returns b's digest, "sha256:<hex>".
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// path validates a digest and returns its file.
func (s *Store) path(digest string) (string, error) {
	hexd, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hexd) != 64 {
		return "", fmt.Errorf("artifact: digest %q is not sha256:<64 hex digits>", digest)
	}
	if _, err := hex.DecodeString(hexd); err != nil || strings.ToLower(hexd) != hexd {
		return "", fmt.Errorf("artifact: digest %q is not sha256:<64 lowercase hex digits>", digest)
	}
	return filepath.Join(s.Dir, "sha256", hexd), nil
}

// Put stores b and returns its digest. Writing is atomic (a temporary file renamed into
// place), so a reader never sees a partial artifact.
func (s *Store) Put(b []byte) (string, error) {
	d := Digest(b)
	p, _ := s.path(d)
	if st, err := os.Stat(p); err == nil && st.Size() == int64(len(b)) {
		return d, nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", fmt.Errorf("artifact: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".put-*")
	if err != nil {
		return "", fmt.Errorf("artifact: %w", err)
	}
	_, werr := f.Write(b)
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("artifact: write: %w", err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("artifact: %w", err)
	}
	return d, nil
}

// Get reads the artifact with digest and checks its bytes against it (a corrupted file is
// an error, not code to run).
func (s *Store) Get(digest string) ([]byte, error) {
	p, err := s.path(digest)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, digest)
	}
	if err != nil {
		return nil, fmt.Errorf("artifact: %w", err)
	}
	if got := Digest(b); got != digest {
		return nil, fmt.Errorf("artifact: %s is corrupted (its bytes hash to %s)", digest, got)
	}
	return b, nil
}

// Has reports whether the artifact exists.
func (s *Store) Has(digest string) bool {
	p, err := s.path(digest)
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

// Remove deletes the artifacts whose digests keep does not hold (pruned revisions), and
// returns how many it removed.
func (s *Store) Remove(keep func(digest string) bool) (int, error) {
	ents, err := os.ReadDir(filepath.Join(s.Dir, "sha256"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("artifact: %w", err)
	}
	n := 0
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || keep("sha256:"+e.Name()) {
			continue
		}
		if err := os.Remove(filepath.Join(s.Dir, "sha256", e.Name())); err == nil {
			n++
		}
	}
	return n, nil
}
