package apiserver

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func createProject(t *testing.T, s *Server, name string) {
	t.Helper()
	_, err := s.dynamic(t, "", s.AdminToken()).Resource(projectsGVR).Create(context.Background(),
		obj(t, "apiVersion: platform.apoxy.dev/v1alpha1\nkind: Project\nmetadata: {name: "+name+"}"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitProject(t, s, name)
}

// TestProjectsAreIsolatedAndRemovable checks that projects created at runtime are served at
// once, see none of each other's objects, and that deleting one stops it and removes its data:
// a project re-created under the same name starts empty and old keys stop working.
func TestProjectsAreIsolatedAndRemovable(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	ctx := context.Background()
	createProject(t, s, "team-a")
	createProject(t, s, "team-b")
	keyA, _ := s.ProjectToken("team-a")
	keyB, _ := s.ProjectToken("team-b")
	a := s.dynamic(t, "team-a", keyA).Resource(backendsGVR).Namespace("default")
	b := s.dynamic(t, "team-b", keyB).Resource(backendsGVR).Namespace("default")

	if _, err := a.Create(ctx, obj(t, seedBackend), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "api-backend", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("team-b sees team-a's backend: err = %v", err)
	}
	if l, err := b.List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 0 {
		t.Fatalf("team-b list = %v items, err %v; want 0", len(l.Items), err)
	}
	// The same name in another project is another object.
	if _, err := b.Create(ctx, obj(t, seedBackend), metav1.CreateOptions{}); err != nil {
		t.Fatalf("same name in team-b: %v", err)
	}

	// A watch in team-b does not see team-a's events.
	w, err := b.Watch(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	<-w.ResultChan() // team-b's own backend (initial ADDED)
	be2 := obj(t, seedBackend)
	be2.SetName("only-in-a")
	if _, err := a.Create(ctx, be2, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-w.ResultChan():
		if u, ok := ev.Object.(*unstructured.Unstructured); ok && u.GetName() == "only-in-a" {
			t.Fatalf("team-b watch saw team-a's object")
		}
	case <-time.After(300 * time.Millisecond):
	}

	// Delete team-a: its API goes away, its data is removed, and its key dies with it.
	if err := s.dynamic(t, "", s.AdminToken()).Resource(projectsGVR).Delete(ctx, "team-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := s.ProjectToken("team-a"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("team-a still served 10s after delete")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := a.List(ctx, metav1.ListOptions{}); err == nil {
		t.Fatal("deleted project still answers")
	}
	createProject(t, s, "team-a")
	newKeyA, _ := s.ProjectToken("team-a")
	if newKeyA == keyA {
		t.Error("re-created project has the old key")
	}
	if _, err := a.List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
		t.Errorf("old key on re-created project: err = %v, want 401", err)
	}
	l, err := s.dynamic(t, "team-a", newKeyA).Resource(backendsGVR).Namespace("default").List(ctx, metav1.ListOptions{})
	if err != nil || len(l.Items) != 0 {
		t.Fatalf("re-created team-a has %d backends (err %v), want 0", len(l.Items), err)
	}
	// team-b is untouched.
	if _, err := b.Get(ctx, "api-backend", metav1.GetOptions{}); err != nil {
		t.Errorf("team-b lost its backend: %v", err)
	}
}

// TestRestartKeepsEverything restarts a server on the same data directory: objects, projects
// and keys survive.
func TestRestartKeepsEverything(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	s1 := startServer(t, dir)
	createProject(t, s1, "keep")
	key, _ := s1.ProjectToken("keep")
	admin := s1.AdminToken()
	if _, err := s1.dynamic(t, "keep", key).Resource(backendsGVR).Namespace("default").Create(ctx, obj(t, seedBackend), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s1.Shutdown()

	s2 := startServer(t, dir)
	if s2.AdminToken() != admin {
		t.Error("admin key changed across restart")
	}
	if got, _ := s2.ProjectToken("keep"); got != key {
		t.Error("project key changed across restart")
	}
	if _, err := s2.dynamic(t, "keep", key).Resource(backendsGVR).Namespace("default").Get(ctx, "api-backend", metav1.GetOptions{}); err != nil {
		t.Fatalf("backend lost across restart: %v", err)
	}
}

// TestNamespaceLifecycle: objects need an existing namespace, default cannot be deleted, and
// deleting a namespace deletes what is in it.
func TestNamespaceLifecycle(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	ctx := context.Background()
	dc := s.dynamic(t, "default", s.AdminToken())
	if err := dc.Resource(namespacesGVR).Delete(ctx, "default", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("delete namespace default: err = %v, want 403", err)
	}
	if _, err := dc.Resource(namespacesGVR).Create(ctx, obj(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: staging}"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	be := obj(t, seedBackend)
	be.SetNamespace("staging")
	if _, err := dc.Resource(backendsGVR).Namespace("staging").Create(ctx, be, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := dc.Resource(namespacesGVR).Delete(ctx, "staging", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := dc.Resource(backendsGVR).Namespace("staging").Get(ctx, "api-backend", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend in deleted namespace still there: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
