package builder

import (
	"context"
	"errors"
	"fmt"

	extv1a2 "apoxy.dev/apoxy/api/extensions/v1alpha2"
	"apoxy.dev/apoxy/internal/function/build"
)

// Compiler fetches a revision's code and builds it: JavaScript and TypeScript bundled by
// esbuild into one ES module for the JS runtime; WebAssembly as it is.
type Compiler struct{}

// ErrUnsupportedSource is a code source this server cannot build yet.
var ErrUnsupportedSource = errors.New("this code source is not supported yet")

// Compile builds spec's code.
func (c *Compiler) Compile(ctx context.Context, namespace string, spec *extv1a2.EdgeFunctionRevisionSpec) (*Output, error) {
	code := spec.Code
	switch {
	case code.JSSource != nil:
		js := code.JSSource
		entry := js.Entrypoint
		if entry == "" {
			entry = "index.js"
		}
		switch {
		case js.Assets != nil:
			out, err := build.JSBundle(inlineFiles(js.Assets), entry)
			if err != nil {
				return nil, err
			}
			return &Output{Code: out, Runtime: "js"}, nil
		case js.Git != nil:
			return nil, fmt.Errorf("spec.template.code.jsSource.git: %w", ErrUnsupportedSource)
		case js.Npm != nil:
			return nil, fmt.Errorf("spec.template.code.jsSource.npm: %w", ErrUnsupportedSource)
		}
		return nil, errors.New("spec.template.code.jsSource: no assets, git or npm")
	case code.WasmSource != nil:
		return nil, fmt.Errorf("spec.template.code.wasmSource: %w", ErrUnsupportedSource)
	case code.GoPluginSource != nil:
		return nil, fmt.Errorf("spec.template.code.goPluginSource: %w", ErrUnsupportedSource)
	}
	return nil, errors.New("spec.template.code: no source")
}

func inlineFiles(a *extv1a2.SourceAssets) []build.File {
	out := make([]build.File, len(a.Files))
	for i, f := range a.Files {
		out[i] = build.File{Path: f.Path, Content: []byte(f.Content)}
	}
	return out
}
