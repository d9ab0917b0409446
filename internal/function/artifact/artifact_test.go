package artifact

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPutGet(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	d, err := s.Put([]byte("export default {}"))
	if err != nil {
		t.Fatal(err)
	}
	if d != Digest([]byte("export default {}")) || !strings.HasPrefix(d, "sha256:") {
		t.Fatalf("digest %s", d)
	}
	if d2, err := s.Put([]byte("export default {}")); err != nil || d2 != d {
		t.Fatalf("second put: %s %v", d2, err)
	}
	b, err := s.Get(d)
	if err != nil || string(b) != "export default {}" {
		t.Fatalf("get: %q %v", b, err)
	}
	if !s.Has(d) {
		t.Fatal("Has false after Put")
	}
	other := Digest([]byte("x"))
	if _, err := s.Get(other); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	// A corrupted file is refused, not run.
	p := filepath.Join(s.Dir, "sha256", strings.TrimPrefix(d, "sha256:"))
	os.WriteFile(p, []byte("export default {evil}"), 0o600)
	if _, err := s.Get(d); err == nil || !strings.Contains(err.Error(), "corrupted") {
		t.Fatalf("corrupted: %v", err)
	}
}

func TestDigestValidated(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	for _, d := range []string{"", "sha256:../../etc/passwd", "md5:00", "sha256:" + strings.Repeat("G", 64), "sha256:" + strings.Repeat("A", 64)} {
		if _, err := s.Get(d); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q): %v, want a digest error", d, err)
		}
	}
}

func TestRemove(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	a, _ := s.Put([]byte("a"))
	b, _ := s.Put([]byte("b"))
	n, err := s.Remove(func(d string) bool { return d == a })
	if err != nil || n != 1 {
		t.Fatalf("removed %d, %v", n, err)
	}
	if !s.Has(a) || s.Has(b) {
		t.Fatalf("after Remove: a %v b %v", s.Has(a), s.Has(b))
	}
}
