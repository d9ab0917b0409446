// Package hack holds the code generation script and the test that keeps its output fresh.
package hack

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// generated lists the checked-in files hack/update-codegen.sh produces.
func generated(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if rel == ".git" || rel == "test" || rel == "bin" {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), "zz_generated.") || strings.HasPrefix(rel, filepath.Join("internal", "gwschema", "crds")+string(filepath.Separator)) {
			out = append(out, rel)
		}
		return nil
	})
	return out, err
}

// TestGeneratedCodeIsFresh regenerates everything in a copy of the module and fails if any
// checked-in generated file differs: run `make generate` and commit the result.
func TestGeneratedCodeIsFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the code generators")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	for _, p := range []string{"go.mod", "go.sum", "api", "hack", "internal/gwschema/crds"} {
		if err := copyTree(filepath.Join(root, p), filepath.Join(tmp, p)); err != nil {
			t.Fatal(err)
		}
	}
	// Remove the generated files from the copy so stale leftovers cannot hide.
	files, err := generated(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		os.Remove(filepath.Join(tmp, f))
	}
	cmd := exec.Command("bash", "hack/update-codegen.sh")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("update-codegen.sh: %v\n%s", err, out)
	}
	regenerated, err := generated(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(regenerated, "\n") != strings.Join(files, "\n") {
		t.Errorf("generated file set differs:\nchecked in:  %v\nregenerated: %v", files, regenerated)
	}
	for _, f := range files {
		want, _ := os.ReadFile(filepath.Join(tmp, f))
		got, _ := os.ReadFile(filepath.Join(root, f))
		if !bytes.Equal(want, got) {
			t.Errorf("%s is stale: run `make generate` and commit the result", f)
		}
	}
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}
