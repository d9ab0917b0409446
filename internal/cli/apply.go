package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/cmd/apply"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"sigs.k8s.io/yaml"

	"apoxy.dev/apoxy/internal/resource"
)

// newApplyCommand is kubectl apply with Apoxy's input handling in front: every document of
// every file is read first (FILE, DIR with -R, or - for stdin), comment-only documents are
// skipped, and objects are applied in dependency order (namespaces and secrets first, routes
// and policies last), so one file can hold a whole edge in any order.
func newApplyCommand(f cmdutil.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	c := apply.NewCmdApply("apoxy", f, streams)
	c.Example = `  # Apply a file, a directory tree, or stdin
  apoxy apply -f backend.yaml
  apoxy apply -f config/ -R
  cat route.yaml | apoxy apply -f -

  # Server-side apply
  apoxy apply -f route.yaml --server-side`
	run := c.Run
	c.Run = nil
	c.RunE = func(cmd *cobra.Command, args []string) error {
		files, err := fileFlag(cmd)
		if err != nil {
			return err
		}
		recursive, _ := cmd.Flags().GetBool("recursive")
		docs, err := readManifests(files, recursive, streams.In)
		if err != nil {
			return err
		}
		if len(docs) == 0 {
			return errors.New("no objects to apply: the input has no YAML or JSON documents with a kind")
		}
		// Kinds are checked against the server first (an unreachable server is left to
		// kubectl's own error).
		if dc, err := f.ToDiscoveryClient(); err == nil {
			if served, err := loadServedKinds(dc); err == nil {
				if err := checkManifests(docs, served, streams.ErrOut); err != nil {
					return err
				}
			}
		}
		sortByDependency(docs)
		// kubectl's builder reads files in order (stdin only from os.Stdin), so hand it one
		// temporary file holding the sorted documents.
		tmp, err := os.CreateTemp("", "apoxy-apply-*.yaml")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		for _, d := range docs {
			fmt.Fprintf(tmp, "---\n%s\n", d.raw)
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		if err := cmd.Flags().Lookup("filename").Value.(pflag.SliceValue).Replace([]string{tmp.Name()}); err != nil {
			return err
		}
		_ = cmd.Flags().Set("recursive", "false")
		// kubectl exits on errors; remove the temporary file first.
		cmdutil.BehaviorOnFatal(func(msg string, code int) {
			os.Remove(tmp.Name())
			if msg != "" {
				fmt.Fprintln(streams.ErrOut, readableErrors(msg))
			}
			os.Exit(code)
		})
		defer cmdutil.DefaultBehaviorOnFatal()
		run(cmd, args)
		return nil
	}
	return c
}

func fileFlag(cmd *cobra.Command) ([]string, error) {
	files, err := cmd.Flags().GetStringSlice("filename")
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, errors.New("must specify -f FILE, -f DIR or -f - (stdin)")
	}
	return files, nil
}

// manifest is one YAML/JSON document with a kind.
type manifest struct {
	source     string // file and document number, for errors
	apiVersion string
	kind       string
	raw        []byte
}

// readManifests reads every document from files (a directory reads its .yaml, .yml and .json
// files, recursing with -R; "-" is stdin).
func readManifests(files []string, recursive bool, stdin io.Reader) ([]manifest, error) {
	var out []manifest
	for _, name := range files {
		if name == "-" {
			ms, err := splitDocuments("stdin", stdin)
			if err != nil {
				return nil, err
			}
			out = append(out, ms...)
			continue
		}
		paths, err := expandPath(name, recursive)
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			fh, err := os.Open(p)
			if err != nil {
				return nil, err
			}
			ms, err := splitDocuments(p, fh)
			fh.Close()
			if err != nil {
				return nil, err
			}
			out = append(out, ms...)
		}
	}
	return out, nil
}

func expandPath(name string, recursive bool) ([]string, error) {
	st, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", name, err)
	}
	if !st.IsDir() {
		return []string{name}, nil
	}
	var paths []string
	err = filepath.WalkDir(name, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != name && !recursive {
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			paths = append(paths, p)
		}
		return nil
	})
	sort.Strings(paths)
	return paths, err
}

// splitDocuments splits a multi-document YAML (or JSON) stream. Documents that hold only
// comments or whitespace are skipped; a document without kind is an error naming it.
func splitDocuments(source string, r io.Reader) ([]manifest, error) {
	yr := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var out []manifest
	for i := 1; ; i++ {
		doc, err := yr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, i, err)
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		var anyDoc any
		if err := yaml.Unmarshal(doc, &anyDoc); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, i, err)
		}
		if anyDoc == nil {
			continue // empty or comment-only
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, i, err)
		}
		if head.Kind == "" || head.APIVersion == "" {
			return nil, fmt.Errorf("%s: document %d: apiVersion and kind are required (e.g. apiVersion: core.apoxy.dev/v1alpha2, kind: Backend)", source, i)
		}
		out = append(out, manifest{source: fmt.Sprintf("%s#%d", source, i), apiVersion: head.APIVersion, kind: head.Kind, raw: bytes.TrimSpace(doc)})
	}
}

// sortByDependency orders documents by their kind's apply rank in the kind registry
// (resource.ApplyOrder: namespaces and secrets first, routes and policies last; kinds the
// registry does not know between the two), keeping file order within a rank.
func sortByDependency(ms []manifest) {
	sort.SliceStable(ms, func(i, j int) bool { return resource.ApplyOrderOf(ms[i].kind) < resource.ApplyOrderOf(ms[j].kind) })
}
