package controller

import (
	"testing"

	"apoxy.dev/apoxy/internal/resource"
)

// TestStatusWriters: every registered kind whose status comes from the data plane has a status
// writer here, and every writer belongs to such a kind, so a new kind's status cannot be
// declared and then never written.
func TestStatusWriters(t *testing.T) {
	for _, k := range resource.Kinds() {
		_, ok := dataPlaneStatus[k.GVK.GroupKind()]
		if want := k.Status == resource.StatusByDataPlane; ok != want {
			t.Errorf("%s: status writer here = %v, but the registry says status by data plane = %v", k, ok, want)
		}
	}
	for gk := range dataPlaneStatus {
		found := false
		for _, k := range resource.Kinds() {
			found = found || k.GVK.GroupKind() == gk
		}
		if !found {
			t.Errorf("status writer for %s, which is not registered", gk)
		}
	}
}

// TestWatchesWhatTheTranslatorReads: the controller watches every kind with a list in
// resource.Set, and only those.
func TestWatchesWhatTheTranslatorReads(t *testing.T) {
	n := 0
	for _, k := range resource.Kinds() {
		if k.InSet() {
			n++
		}
	}
	if got := len(watched()); got != n || n == 0 {
		t.Errorf("watched %d kinds, the translator reads %d", got, n)
	}
	for _, k := range watched() {
		if k.Root || !k.InSet() {
			t.Errorf("watches %s, which the translator does not read", k)
		}
	}
}
