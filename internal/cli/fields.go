package cli

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"apoxy.dev/apoxy/internal/resource"
)

var (
	// cannotHandle is the server's strict-decoding refusal: `Backend in version "v1alpha2"
	// cannot be handled as a Backend: strict decoding error: unknown field "spec.endpointz"`.
	cannotHandle = regexp.MustCompile(`(\w+) in version "([^"]+)" cannot be handled as a`)
	unknownField = regexp.MustCompile(`unknown field "([^"]+)"`)
	indexes      = regexp.MustCompile(`\[[^\]]*\]`)
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
	typ := reflect.TypeOf(kind.New())
	return unknownField.ReplaceAllStringFunc(line, func(s string) string {
		path := unknownField.FindStringSubmatch(s)[1]
		if near := nearestField(typ, path); near != "" {
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

// nearestField walks path (dotted JSON names, list indexes ignored) through typ and returns
// the path with its last element replaced by the nearest JSON field name there, or "".
func nearestField(typ reflect.Type, path string) string {
	parts := strings.Split(indexes.ReplaceAllString(path, ""), ".")
	for i, p := range parts {
		typ = elem(typ)
		if typ.Kind() != reflect.Struct {
			return ""
		}
		names := jsonFields(typ)
		if i == len(parts)-1 {
			near := nearest(p, keys(names))
			if near == "" || near == p {
				return ""
			}
			return joinPath(path, near)
		}
		next, ok := names[p]
		if !ok {
			return ""
		}
		typ = next
	}
	return ""
}

// joinPath replaces the last element of path (keeping its list indexes) with name.
func joinPath(path, name string) string {
	if i := strings.LastIndex(path, "."); i >= 0 {
		return path[:i+1] + name
	}
	return name
}

func elem(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	return t
}

// jsonFields maps a struct's JSON field names (inlined and embedded structs flattened) to
// their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if (f.Anonymous && name == "") || strings.Contains(opts, "inline") {
			if et := elem(f.Type); et.Kind() == reflect.Struct {
				for n, ft := range jsonFields(et) {
					out[n] = ft
				}
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func keys(m map[string]reflect.Type) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
