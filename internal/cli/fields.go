package cli

import (
	"fmt"
	"regexp"

	"apoxy.dev/apoxy/internal/resource"
)

var (
	// cannotHandle is the server's strict-decoding refusal: `Backend in version "v1alpha2"
	// cannot be handled as a Backend: strict decoding error: unknown field "spec.endpointz"`.
	cannotHandle = regexp.MustCompile(`(\w+) in version "([^"]+)" cannot be handled as a`)
	unknownField = regexp.MustCompile(`unknown field "([^"]+)"`)
)

// suggestFields adds to each `unknown field "PATH"` of a strict-decoding error the field the
// kind has at that place whose name is nearest (`did you mean "spec.endpoints"?`), from the
// kind's Go type (the CLI is built with the server's kinds).
func suggestFields(line string) string {
	m := cannotHandle.FindStringSubmatch(line)
	if m == nil {
		return line
	}
	kind := findKind(m[1], m[2])
	if kind == nil {
		return line
	}
	return unknownField.ReplaceAllStringFunc(line, func(s string) string {
		path := unknownField.FindStringSubmatch(s)[1]
		if near := kind.NearestField(path); near != "" {
			return fmt.Sprintf("%s (did you mean %q?)", s, near)
		}
		return s
	})
}

func findKind(name, version string) *resource.Kind {
	for _, k := range resource.Kinds() {
		if k.GVK.Kind == name && k.GVK.Version == version {
			return k
		}
	}
	return nil
}
