package source

import (
	"context"
	"crypto/rand"
	"io"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// TestGitHTTPBackend fetches from Git's own smart-HTTP server, git http-backend, as GitHub
// and GitLab serve: unlike go-git's upload-pack it does shallow fetches, side-band and
// wants of any reachable commit. The repository's history holds a 300 KB file that its tip
// deleted, so a fetch of the tip fits in 100 KB only if it is shallow. The git binary serves
// the test; the code under test does not use it.
func TestGitHTTPBackend(t *testing.T) {
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git binary to serve the repository")
	}
	root := t.TempDir()
	dir := filepath.Join(root, "fn")
	r, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.Main}})
	if err != nil {
		t.Fatal(err)
	}
	wt, _ := r.Worktree()
	sig := &object.Signature{Name: "T", Email: "t@example.com", When: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	big := make([]byte, 300_000)
	rand.Read(big)
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := wt.Add(name); err != nil {
			t.Fatal(err)
		}
	}
	write("big.bin", big)
	write("index.js", []byte("v1"))
	c1, err := wt.Commit("one", &git.CommitOptions{Author: sig})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateTag("v1", c1, &git.CreateTagOptions{Tagger: sig, Message: "one"}); err != nil {
		t.Fatal(err)
	}
	if _, err := wt.Remove("big.bin"); err != nil {
		t.Fatal(err)
	}
	write("index.js", []byte("v2"))
	sig.When = sig.When.Add(time.Hour)
	c2, err := wt.Commit("two", &git.CommitOptions{Author: sig})
	if err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(&cgi.Handler{
		Path:   gitBin,
		Args:   []string{"http-backend"},
		Stderr: io.Discard,
		Env: []string{
			"GIT_PROJECT_ROOT=" + root,
			"GIT_HTTP_EXPORT_ALL=1",
			"HOME=" + root,
			"GIT_CONFIG_NOSYSTEM=1",
			"GIT_CONFIG_COUNT=1",
			"GIT_CONFIG_KEY_0=uploadpack.allowReachableSHA1InWant",
			"GIT_CONFIG_VALUE_0=true",
		},
	})
	defer srv.Close()
	repo := srv.URL + "/fn"
	ctx := context.Background()

	small := &Fetcher{MaxBytes: 100_000}
	files, commit, err := small.Git(ctx, GitRef{Repository: repo})
	if err != nil {
		t.Fatalf("shallow fetch of the tip: %v", err)
	}
	if commit != c2.String() {
		t.Errorf("commit = %s, want %s", commit, c2)
	}
	wantFiles(t, files, map[string]string{"index.js": "v2"})
	if _, _, err := small.Git(ctx, GitRef{Repository: repo, Branch: "main"}); err != nil {
		t.Errorf("shallow fetch of a branch: %v", err)
	}
	// Control: go-git's upload-pack cannot do shallow fetches, so the same fetch carries the
	// whole history and exceeds the bound. (This is what makes the check above mean shallow.)
	goGit := serveRepo(t, &testRepo{git: r}, "", "")
	_, _, err = small.Git(ctx, GitRef{Repository: goGit})
	wantErr(t, err, ErrTooLarge)

	// A commit that is no tip: wanted directly (the server allows reachable commits), shallow.
	f := &Fetcher{}
	files, commit, err = f.Git(ctx, GitRef{Repository: repo, Commit: c1.String()})
	if err != nil {
		t.Fatal(err)
	}
	if commit != c1.String() || len(files) != 2 {
		t.Errorf("commit %s with %d files, want %s with 2", commit, len(files), c1)
	}
	// An annotated tag: the tag object is wanted, shallow, and peeled to its commit.
	files, commit, err = f.Git(ctx, GitRef{Repository: repo, Tag: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	if commit != c1.String() || len(files) != 2 {
		t.Errorf("tag v1: commit %s with %d files, want %s with 2", commit, len(files), c1)
	}
	// An abbreviated one: the history of every branch and tag is fetched and searched.
	files, commit, err = f.Git(ctx, GitRef{Repository: repo, Commit: c1.String()[:8]})
	if err != nil {
		t.Fatal(err)
	}
	if commit != c1.String() || len(files) != 2 {
		t.Errorf("commit %s with %d files, want %s with 2", commit, len(files), c1)
	}
	_, _, err = f.Git(ctx, GitRef{Repository: repo, Branch: "dev"})
	wantErr(t, err, ErrNotFound, `git: branch "dev" not found in `+repo+" (branches: main)")
	_, _, err = f.Git(ctx, GitRef{Repository: srv.URL + "/missing"})
	wantErr(t, err, ErrNotFound, "git: repository "+srv.URL+"/missing not found")
}
