// Package build turns an edge function's sources into the artifact a runtime loads: one
// bundled ES module for JavaScript and TypeScript (esbuild), a WebAssembly module for Go
// (the local Go toolchain, wasip1). Build errors carry the compiler's own message with the
// file and line, for the revision's status.
package build

import (
	"fmt"
	"path"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
)

// File is one source file of a function, its path relative to the function's root.
type File struct {
	Path    string
	Content []byte
}

// Error is a build that failed: each message names its file, line and column, as the
// compiler printed it ("index.ts:3:7: Expected ";" but found "x"").
type Error struct {
	Messages []string
}

func (e *Error) Error() string { return strings.Join(e.Messages, "\n") }

// namespace is where the function's files live for esbuild: nothing is read from disk, and
// an import of anything outside the files (a bare package name, an absolute path) fails.
const namespace = "apoxy-function"

// JSBundle bundles the files reachable from entry into one ES module (ES2020, for QuickJS)
// whose default export is the entrypoint's. TypeScript (.ts, .tsx, .mts) is compiled; JSON
// files can be imported. Imports must be relative paths to files among files: npm
// dependencies come bundled in a package's files (the npm source) or not at all.
func JSBundle(files []File, entry string) ([]byte, error) {
	byPath := make(map[string][]byte, len(files))
	for _, f := range files {
		byPath[path.Clean(f.Path)] = f.Content
	}
	entry = path.Clean(entry)
	if _, ok := byPath[entry]; !ok {
		return nil, &Error{Messages: []string{fmt.Sprintf("entrypoint %q is not among the function's files", entry)}}
	}
	res := api.Build(api.BuildOptions{
		EntryPoints: []string{entry},
		Bundle:      true,
		Write:       false,
		Format:      api.FormatESModule,
		Platform:    api.PlatformNeutral,
		Target:      api.ES2020,
		LogLevel:    api.LogLevelSilent,
		Charset:     api.CharsetUTF8,
		Outfile:     "function.js",
		Plugins: []api.Plugin{{
			Name: "apoxy-function-files",
			Setup: func(b api.PluginBuild) {
				b.OnResolve(api.OnResolveOptions{Filter: ".*"}, func(a api.OnResolveArgs) (api.OnResolveResult, error) {
					if a.Kind == api.ResolveEntryPoint {
						return api.OnResolveResult{Path: a.Path, Namespace: namespace}, nil
					}
					if !strings.HasPrefix(a.Path, "./") && !strings.HasPrefix(a.Path, "../") {
						return api.OnResolveResult{}, fmt.Errorf("cannot import %q: only relative imports of the function's own files are bundled", a.Path)
					}
					p := path.Join(path.Dir(a.Importer), a.Path)
					if strings.HasPrefix(p, "../") || p == ".." {
						return api.OnResolveResult{}, fmt.Errorf("cannot import %q: it leads outside the function's files", a.Path)
					}
					for _, c := range []string{p, p + ".ts", p + ".js", p + ".mjs", p + ".tsx", p + ".json", p + "/index.ts", p + "/index.js"} {
						if _, ok := byPath[c]; ok {
							return api.OnResolveResult{Path: c, Namespace: namespace}, nil
						}
					}
					return api.OnResolveResult{}, fmt.Errorf("cannot import %q: no such file among the function's files", a.Path)
				})
				b.OnLoad(api.OnLoadOptions{Filter: ".*", Namespace: namespace}, func(a api.OnLoadArgs) (api.OnLoadResult, error) {
					src, ok := byPath[a.Path]
					if !ok {
						return api.OnLoadResult{}, fmt.Errorf("no file %q", a.Path)
					}
					s := string(src)
					return api.OnLoadResult{Contents: &s, Loader: loaderFor(a.Path)}, nil
				})
			},
		}},
	})
	if len(res.Errors) > 0 {
		return nil, &Error{Messages: messages(res.Errors)}
	}
	if len(res.OutputFiles) != 1 {
		return nil, &Error{Messages: []string{fmt.Sprintf("esbuild produced %d files, want 1", len(res.OutputFiles))}}
	}
	return res.OutputFiles[0].Contents, nil
}

func loaderFor(p string) api.Loader {
	switch path.Ext(p) {
	case ".ts", ".mts", ".cts":
		return api.LoaderTS
	case ".tsx":
		return api.LoaderTSX
	case ".jsx":
		return api.LoaderJSX
	case ".json":
		return api.LoaderJSON
	}
	return api.LoaderJS
}

// messages formats esbuild's errors as file:line:column: text.
func messages(ms []api.Message) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		if l := m.Location; l != nil {
			out = append(out, fmt.Sprintf("%s:%d:%d: %s", strings.TrimPrefix(l.File, namespace+":"), l.Line, l.Column+1, m.Text))
		} else {
			out = append(out, m.Text)
		}
	}
	return out
}
