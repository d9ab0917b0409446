package resource

import (
	"reflect"
	"regexp"
	"strings"
)

var indexes = regexp.MustCompile(`\[[^\]]*\]`)

// Nearest is the candidate closest to s (case-insensitive edit distance at most a third of
// its length, at least 2), or "".
func Nearest(s string, candidates []string) string {
	best, bestD := "", max(2, len(s)/3)+1
	ls := strings.ToLower(s)
	for _, c := range candidates {
		if d := editDistance(ls, strings.ToLower(c)); d < bestD || (d == bestD && best != "" && c < best) {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is Levenshtein's distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// NearestField walks path (dotted JSON names, list indexes ignored) through the kind's Go type
// and returns the path with its last element replaced by the nearest JSON field name there, or
// "" (the path exists, or nothing is near): `did you mean "spec.endpoints"?` for an unknown
// field the API refused.
func (k *Kind) NearestField(path string) string {
	typ := reflect.TypeOf(k.New())
	parts := strings.Split(indexes.ReplaceAllString(path, ""), ".")
	for i, p := range parts {
		typ = elem(typ)
		if typ.Kind() != reflect.Struct {
			return ""
		}
		names := jsonFields(typ)
		if i == len(parts)-1 {
			near := Nearest(p, keys(names))
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
