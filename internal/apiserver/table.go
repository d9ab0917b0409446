package apiserver

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/client-go/util/jsonpath"

	"apoxy.dev/apoxy/internal/resource"
)

// tableConvertor renders objects as rows for `kubectl get` and `apoxy get`: NAME, the
// resource's columns, AGE.
type tableConvertor struct {
	defs    []metav1.TableColumnDefinition
	columns []*jsonpath.JSONPath // nil where the column has a Cell function
	cells   []func(runtime.Object) any
}

var _ rest.TableConvertor = (*tableConvertor)(nil)

func newTableConvertor(cols []resource.Column) (*tableConvertor, error) {
	t := &tableConvertor{defs: []metav1.TableColumnDefinition{{Name: "Name", Type: "string", Format: "name", Description: "Name of the object"}}}
	for _, c := range cols {
		var jp *jsonpath.JSONPath
		switch {
		case c.Cell != nil && c.JSONPath != "":
			return nil, fmt.Errorf("column %q: set JSONPath or Cell, not both", c.Name)
		case c.Cell == nil:
			jp = jsonpath.New(c.Name).AllowMissingKeys(true)
			if err := jp.Parse(fmt.Sprintf("{%s}", c.JSONPath)); err != nil {
				return nil, fmt.Errorf("column %q: bad JSONPath %q: %w", c.Name, c.JSONPath, err)
			}
		}
		typ := c.Type
		format := ""
		if typ == "date" {
			typ, format = "string", "date"
		}
		t.defs = append(t.defs, metav1.TableColumnDefinition{Name: c.Name, Type: typ, Format: format, Description: c.Description, Priority: c.Priority})
		t.columns = append(t.columns, jp)
		t.cells = append(t.cells, c.Cell)
	}
	t.defs = append(t.defs, metav1.TableColumnDefinition{Name: "Age", Type: "string", Description: "Time since creation"})
	return t, nil
}

func (t *tableConvertor) ConvertToTable(_ context.Context, obj runtime.Object, opts runtime.Object) (*metav1.Table, error) {
	table := &metav1.Table{}
	if o, ok := opts.(*metav1.TableOptions); !ok || !o.NoHeaders {
		table.ColumnDefinitions = t.defs
	}
	if lm, err := meta.ListAccessor(obj); err == nil {
		table.ResourceVersion = lm.GetResourceVersion()
		table.Continue = lm.GetContinue()
		table.RemainingItemCount = lm.GetRemainingItemCount()
	}
	var items []runtime.Object
	if meta.IsListType(obj) {
		var err error
		if items, err = meta.ExtractList(obj); err != nil {
			return nil, err
		}
	} else {
		items = []runtime.Object{obj}
	}
	for _, item := range items {
		row, err := t.row(item)
		if err != nil {
			return nil, err
		}
		table.Rows = append(table.Rows, row)
	}
	return table, nil
}

func (t *tableConvertor) row(obj runtime.Object) (metav1.TableRow, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return metav1.TableRow{}, err
	}
	cells := []any{m.GetName()}
	var u map[string]any
	for i, jp := range t.columns {
		if t.cells[i] != nil {
			cells = append(cells, t.cells[i](obj))
			continue
		}
		if u == nil {
			if u, err = runtime.DefaultUnstructuredConverter.ToUnstructured(obj); err != nil {
				return metav1.TableRow{}, err
			}
		}
		cells = append(cells, cell(jp, u, t.defs[i+1]))
	}
	cells = append(cells, age(m.GetCreationTimestamp()))
	return metav1.TableRow{Cells: cells, Object: runtime.RawExtension{Object: obj}}, nil
}

// cell evaluates one column; several results are joined with commas like kubectl does.
func cell(jp *jsonpath.JSONPath, obj map[string]any, def metav1.TableColumnDefinition) any {
	results, err := jp.FindResults(obj)
	if err != nil || len(results) == 0 {
		return nil
	}
	var vals []string
	var last any
	for _, r := range results {
		for _, v := range r {
			last = v.Interface()
			vals = append(vals, fmt.Sprint(last))
		}
	}
	switch {
	case len(vals) == 0:
		return nil
	case len(vals) == 1 && def.Type != "string":
		return last
	case def.Format == "date" && len(vals) == 1:
		if ts, err := time.Parse(time.RFC3339, vals[0]); err == nil {
			return duration.HumanDuration(time.Since(ts))
		}
	}
	return strings.Join(vals, ",")
}

func age(ts metav1.Time) string {
	if ts.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(time.Since(ts.Time))
}
