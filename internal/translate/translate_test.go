package translate

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"apoxy.dev/apoxy/internal/resource/manifest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.out.yaml from the current output")

var testOptions = Options{
	Now:             time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	StatusAddresses: []string{"127.0.0.1"},
}

// render is the golden form: the status report, then the snapshot.
func render(t testing.TB, in []byte) []byte {
	t.Helper()
	set, err := manifest.Load(bytes.NewReader(in))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	opts := testOptions
	if strings.Contains(string(in), "# options: addressPool 127.0.0.10-127.0.0.12") {
		opts.AddressPool = []string{"127.0.0.10", "127.0.0.11", "127.0.0.12"}
	}
	snap, report := Translate(set, opts)
	// The feature list is checked by TestSupportedFeatures; keeping it out of
	// the golden files stops every new feature from rewriting all of them.
	for _, gc := range report.GatewayClasses {
		gc.SupportedFeatures = nil
	}
	st, err := yaml.Marshal(map[string]any{"status": report})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := yaml.Marshal(map[string]any{"snapshot": snap})
	if err != nil {
		t.Fatal(err)
	}
	return append(append(st, []byte("---\n")...), sn...)
}

// TestGolden translates every testdata/*.in.yaml and compares with *.out.yaml. Run
// `go test ./internal/translate -update` to rewrite them (and delete orphaned outputs).
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(data, []byte("#")) {
				t.Errorf("%s must open with a comment saying what the case proves", in)
			}
			got := render(t, data)
			out := strings.TrimSuffix(in, ".in.yaml") + ".out.yaml"
			if *update {
				if err := os.WriteFile(out, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(out)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", out, diff)
			}
			// Deterministic: a second run gives the same bytes.
			if again := render(t, data); !bytes.Equal(again, got) {
				t.Error("translation is not deterministic")
			}
		})
	}
	if *update {
		outs, _ := filepath.Glob("testdata/*.out.yaml")
		for _, o := range outs {
			if _, err := os.Stat(strings.TrimSuffix(o, ".out.yaml") + ".in.yaml"); os.IsNotExist(err) {
				os.Remove(o)
			}
		}
	}
}

// FuzzTranslate mutates the golden inputs: whatever loads must translate without panicking
// into a valid snapshot (Translate panics on an invalid one).
func FuzzTranslate(f *testing.F) {
	inputs, _ := filepath.Glob("testdata/*.in.yaml")
	for _, in := range inputs {
		data, _ := os.ReadFile(in)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		set, err := manifest.Load(bytes.NewReader(in))
		if err != nil {
			return
		}
		snap, _ := Translate(set, testOptions)
		if err := snap.Validate(); err != nil {
			t.Fatal(err)
		}
	})
}
