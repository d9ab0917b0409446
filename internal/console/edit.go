package console

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"apoxy.dev/apoxy/internal/resource"
)

// fieldManager is the name the console's changes are recorded under (managedFields).
const fieldManager = "apoxy-console"

// upstreamGatewayGroup is the Gateway API's own group, applied as ours (as `apoxy apply` does).
const upstreamGatewayGroup = "gateway.networking.k8s.io"

// parseObject reads the editor's text: exactly one object of a kind the project serves.
func parseObject(text string) (*unstructured.Unstructured, *resource.Kind, error) {
	if strings.TrimSpace(text) == "" {
		return nil, nil, errors.New("the editor is empty: write one object (apiVersion, kind, metadata, spec)")
	}
	var docs int
	for _, d := range strings.Split("\n"+text, "\n---") {
		if strings.TrimSpace(d) != "" {
			docs++
		}
	}
	if docs > 1 {
		return nil, nil, errors.New("the editor holds more than one object: apply them one at a time (or use `apoxy apply -f`)")
	}
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(text), &obj.Object); err != nil {
		return nil, nil, fmt.Errorf("not valid YAML: %v", err)
	}
	if obj.Object == nil {
		return nil, nil, errors.New("the editor holds no object")
	}
	gv, err := schema.ParseGroupVersion(obj.GetAPIVersion())
	if err != nil || obj.GetAPIVersion() == "" || obj.GetKind() == "" {
		return nil, nil, errors.New("apiVersion and kind are required (e.g. apiVersion: gateway.apoxy.dev/v1, kind: HTTPRoute)")
	}
	if gv.Group == upstreamGatewayGroup {
		gv.Group = "gateway.apoxy.dev"
		obj.SetAPIVersion(gv.String())
	}
	k, ok := resource.Lookup(gv.WithKind(obj.GetKind()))
	if !ok || k.Root {
		return nil, nil, fmt.Errorf("no kind %s is served at %s (the navigation lists every kind)", obj.GetKind(), obj.GetAPIVersion())
	}
	if obj.GetName() == "" {
		return nil, nil, errors.New("metadata.name is required")
	}
	if k.Namespaced && obj.GetNamespace() == "" {
		obj.SetNamespace("default")
	}
	for _, f := range []string{"managedFields", "uid", "resourceVersion", "generation", "creationTimestamp"} {
		unstructured.RemoveNestedField(obj.Object, "metadata", f)
	}
	delete(obj.Object, "status")
	return obj, k, nil
}

// serverApply applies obj as the console's field manager, refusing unknown fields (strict field
// validation), so a typo is an error at its field rather than silently dropped.
func (p *pageCtx) serverApply(k *resource.Kind, obj *unstructured.Unstructured) error {
	if k.GVK.Kind == "Secret" {
		return errors.New("Secrets are not edited in the console (their values are never shown): use `apoxy apply -f` or `kubectl create secret`")
	}
	dc, err := p.s.api.dynamic(p.project)
	if err != nil {
		return err
	}
	body, err := obj.MarshalJSON()
	if err != nil {
		return err
	}
	force := true
	opts := metav1.PatchOptions{FieldManager: fieldManager, Force: &force, FieldValidation: "Strict"}
	ri := dc.Resource(k.GVR())
	if k.Namespaced {
		_, err = ri.Namespace(obj.GetNamespace()).Patch(p.ctx(), obj.GetName(), types.ApplyPatchType, body, opts)
	} else {
		_, err = ri.Patch(p.ctx(), obj.GetName(), types.ApplyPatchType, body, opts)
	}
	return err
}

// fieldError is an error of the editor's text, at the line of its field when known.
type fieldError struct {
	Field   string
	Message string
	Line    int // 1-based; 0 when no line holds the field
}

var (
	unknownFieldRE = regexp.MustCompile(`unknown field "([^"]+)"`)
	notDeclaredRE  = regexp.MustCompile(`\.([A-Za-z0-9_.\[\]-]+): field not declared in schema`)
)

// fieldErrors turns the server's refusal into errors at fields of text: each cause of an
// Invalid error, and the unknown fields strict validation names.
func fieldErrors(text string, k *resource.Kind, err error) []fieldError {
	var out []fieldError
	var root *yamlv3.Node
	var doc yamlv3.Node
	if yamlv3.Unmarshal([]byte(text), &doc) == nil && len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	add := func(field, msg string) {
		out = append(out, fieldError{Field: field, Message: msg, Line: lineOf(root, field)})
	}
	unknown := func(field string) {
		msg := "unknown field: the kind has no such field"
		if near := ""; k != nil {
			if near = k.NearestField(field); near != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", near)
			}
		}
		add(field, msg)
	}
	var se *apierrors.StatusError
	if errors.As(err, &se) {
		if d := se.ErrStatus.Details; d != nil && len(d.Causes) > 0 {
			for _, c := range d.Causes {
				if c.Field != "" {
					add(strings.TrimPrefix(c.Field, "."), c.Message)
					continue
				}
				if m := notDeclaredRE.FindStringSubmatch(c.Message); m != nil {
					unknown(m[1])
					continue
				}
				add("", c.Message)
			}
			return out
		}
	}
	msg := err.Error()
	matched := false
	for _, m := range unknownFieldRE.FindAllStringSubmatch(msg, -1) {
		unknown(m[1])
		matched = true
	}
	for _, m := range notDeclaredRE.FindAllStringSubmatch(msg, -1) {
		unknown(m[1])
		matched = true
	}
	if !matched {
		add("", msg)
	}
	return out
}

// lineOf finds the line of a field path ("spec.rules[0].matches[0].path.value") in a YAML
// node: the deepest part of the path the text has (an unknown field's own line; a missing
// field's parent).
func lineOf(n *yamlv3.Node, path string) int {
	if n == nil || path == "" {
		return 0
	}
	line := 0
	for _, seg := range splitPath(path) {
		switch {
		case seg.index >= 0:
			if n.Kind != yamlv3.SequenceNode || seg.index >= len(n.Content) {
				return line
			}
			n = n.Content[seg.index]
		default:
			if n.Kind != yamlv3.MappingNode {
				return line
			}
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == seg.key {
					line = n.Content[i].Line
					n = n.Content[i+1]
					found = true
					break
				}
			}
			if !found {
				return line
			}
			continue
		}
		line = n.Line
	}
	return line
}

type pathSeg struct {
	key   string
	index int // -1 for a key
}

// splitPath splits a field path into keys and list indexes.
func splitPath(path string) []pathSeg {
	var out []pathSeg
	for _, part := range strings.Split(path, ".") {
		key, rest, _ := strings.Cut(part, "[")
		if key != "" {
			out = append(out, pathSeg{key: key, index: -1})
		}
		for rest != "" {
			idx, after, ok := strings.Cut(rest, "]")
			if !ok {
				break
			}
			if i, err := strconv.Atoi(idx); err == nil {
				out = append(out, pathSeg{index: i})
			} else {
				out = append(out, pathSeg{key: strings.Trim(idx, `"'`), index: -1}) // map keys: [name]
			}
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return out
}

// listingLine is a line of the editor's text as the error view shows it.
type listingLine struct {
	N      int
	Text   string
	Errors []string
}

// listing numbers the text's lines and hangs each error under its line.
func listing(text string, errs []fieldError) []listingLine {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	out := make([]listingLine, len(lines))
	for i, l := range lines {
		out[i] = listingLine{N: i + 1, Text: l}
	}
	for _, e := range errs {
		if e.Line > 0 && e.Line <= len(out) {
			msg := e.Message
			if e.Field != "" {
				msg = e.Field + ": " + msg
			}
			out[e.Line-1].Errors = append(out[e.Line-1].Errors, msg)
		}
	}
	return out
}
