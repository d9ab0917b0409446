package overview

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func TestObjectProblems(t *testing.T) {
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(`
metadata: {name: web, namespace: default}
status:
  conditions:
  - {type: Ready, status: "True", reason: Ready}
  - {type: Conflicted, status: "False", reason: NoConflicts}
  parents:
  - parentRef: {name: default}
    conditions:
    - {type: Accepted, status: "True", reason: Accepted}
    - {type: ResolvedRefs, status: "False", reason: BackendNotFound, message: 'Service "foo-svc" not found'}
  ancestors:
  - ancestorRef: {name: edge}
    conditions:
    - {type: Accepted, status: Unknown, reason: Pending, message: not yet}
  listeners:
  - name: https
    conditions:
    - {type: Conflicted, status: "True", reason: HostnameConflict, message: two listeners}
`), &obj); err != nil {
		t.Fatal(err)
	}
	got := Problems("HTTPRoute", &unstructured.Unstructured{Object: obj})
	want := []string{
		`HTTPRoute default/web (parent default): ResolvedRefs=False (BackendNotFound): Service "foo-svc" not found`,
		`HTTPRoute default/web (ancestor edge): Accepted=Unknown (Pending): not yet`,
		`HTTPRoute default/web (listener https): Conflicted=True (HostnameConflict): two listeners`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestReported(t *testing.T) {
	for doc, want := range map[string]bool{
		`metadata: {name: a, generation: 1}`: false,
		`{metadata: {name: a, generation: 1}, status: {conditions: [{type: Ready, status: "True"}]}}`:                        true,
		`{metadata: {name: a, generation: 2}, status: {observedGeneration: 1, conditions: [{type: Ready, status: "True"}]}}`: false,
		`{metadata: {name: a, generation: 2}, status: {parents: [{parentRef: {name: d}, conditions: []}]}}`:                  true,
	} {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		if got := Reported(&unstructured.Unstructured{Object: obj}); got != want {
			t.Errorf("%s: %v, want %v", doc, got, want)
		}
	}
}
