//go:build !wasip1

package edgefunc

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Source holds every Go file of the package and its sub-packages, as they are on disk: a
// file or sub-package the embed patterns miss would be missing from every Go function a
// server builds.
func TestSourceIsThePackage(t *testing.T) {
	onDisk := 0
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		onDisk++
		want, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		got, err := Source.ReadFile(filepath.ToSlash(p))
		if err != nil {
			t.Errorf("%s is not in Source: %v", p, err)
			return nil
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs in Source", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if onDisk < 8 {
		t.Fatalf("found %d Go files; is the test running in pkg/edgefunc?", onDisk)
	}
	for _, p := range []string{"edgefunc_wasip1.go", "onresponse/onresponse.go"} {
		if _, err := fs.Stat(Source, p); err != nil {
			t.Errorf("Source lacks %s: %v", p, err)
		}
	}
}
