package source

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/server"

	"apoxy.dev/apoxy/internal/function/build"
)

// testRepo is a repository made on disk by newTestRepo.
type testRepo struct {
	dir string
	git *git.Repository
	// c1 is main's first commit (tagged v1.0.0, annotated, and v1-light); c2 is main's tip;
	// c3 is the tip of dev, one commit after c2.
	c1, c2, c3 string
}

// newTestRepo makes a repository with a work tree:
//
//	c1 (main, tags v1.0.0 and v1-light): index.js "v1", fn/index.js, fn/lib/util.js, README.md
//	c2 (main): index.js "v2", fn/link.js -> lib/util.js, fn/shared -> ../shared, shared/s.js,
//	           fn/dangling -> nowhere.js
//	c3 (dev, from c2): dev.js
func newTestRepo(t *testing.T) *testRepo {
	t.Helper()
	dir := t.TempDir()
	r, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.Main}})
	if err != nil {
		t.Fatal(err)
	}
	wt, err := r.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sig := &object.Signature{Name: "Test", Email: "test@example.com", When: when}
	commit := func(msg string, files map[string]string, links map[string]string) string {
		t.Helper()
		for name, content := range files {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for name, target := range links {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		}
		if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
			t.Fatal(err)
		}
		sig.When = sig.When.Add(time.Minute)
		h, err := wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig})
		if err != nil {
			t.Fatal(err)
		}
		return h.String()
	}
	tr := &testRepo{dir: dir, git: r}
	tr.c1 = commit("one", map[string]string{
		"index.js":       "export default 'v1'",
		"fn/index.js":    "import u from './lib/util.js'",
		"fn/lib/util.js": "export default 1",
		"README.md":      "# test",
	}, nil)
	if _, err := r.CreateTag("v1.0.0", plumbing.NewHash(tr.c1), &git.CreateTagOptions{Tagger: sig, Message: "release"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateTag("v1-light", plumbing.NewHash(tr.c1), nil); err != nil {
		t.Fatal(err)
	}
	tr.c2 = commit("two", map[string]string{
		"index.js":    "export default 'v2'",
		"shared/s.js": "export const s = 2",
	}, map[string]string{
		"fn/link.js":  "lib/util.js",
		"fn/shared":   "../shared",
		"fn/dangling": "nowhere.js",
	})
	if err := wt.Checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName("dev"), Create: true}); err != nil {
		t.Fatal(err)
	}
	tr.c3 = commit("three", map[string]string{"dev.js": "dev"}, nil)
	if err := wt.Checkout(&git.CheckoutOptions{Branch: plumbing.Main}); err != nil {
		t.Fatal(err)
	}
	return tr
}

// smartHTTP serves repositories over Git's smart HTTP protocol with go-git's own upload-pack
// (transport/server), as a Git host does: GET <repo>/info/refs?service=git-upload-pack, then
// POST <repo>/git-upload-pack.
type smartHTTP struct {
	repos          map[string]storer.Storer // by URL path, e.g. /team/fn.git
	user, password string                   // when set, basic auth is required
}

// Load implements server.Loader.
func (h *smartHTTP) Load(ep *transport.Endpoint) (storer.Storer, error) {
	st, ok := h.repos[ep.Path]
	if !ok {
		return nil, transport.ErrRepositoryNotFound
	}
	return st, nil
}

func (h *smartHTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.user != "" {
		if u, p, ok := r.BasicAuth(); !ok || u != h.user || p != h.password {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
	}
	var repoPath string
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/info/refs"):
		if r.URL.Query().Get("service") != transport.UploadPackServiceName {
			http.Error(w, "only smart upload-pack is served", http.StatusForbidden)
			return
		}
		repoPath = strings.TrimSuffix(r.URL.Path, "/info/refs")
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/"+transport.UploadPackServiceName):
		repoPath = strings.TrimSuffix(r.URL.Path, "/"+transport.UploadPackServiceName)
	default:
		http.NotFound(w, r)
		return
	}
	sess, err := server.NewServer(h).NewUploadPackSession(&transport.Endpoint{Protocol: "file", Path: repoPath}, nil)
	if errors.Is(err, transport.ErrRepositoryNotFound) {
		http.NotFound(w, r)
		return
	} else if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer sess.Close()
	if r.Method == http.MethodGet {
		ar, err := sess.AdvertisedReferencesContext(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		ar.Prefix = [][]byte{[]byte("# service=" + transport.UploadPackServiceName), pktline.Flush}
		w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
		w.Header().Set("Cache-Control", "no-cache")
		_ = ar.Encode(w)
		return
	}
	req := packp.NewUploadPackRequest()
	if err := req.Decode(r.Body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp, err := sess.UploadPack(r.Context(), req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer resp.Close()
	w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
	_ = resp.Encode(w)
}

// serveRepo serves tr at <server>/team/fn.git and returns that URL.
func serveRepo(t *testing.T, tr *testRepo, user, password string) string {
	t.Helper()
	srv := httptest.NewServer(&smartHTTP{repos: map[string]storer.Storer{"/team/fn.git": tr.git.Storer}, user: user, password: password})
	t.Cleanup(srv.Close)
	return srv.URL + "/team/fn.git"
}

// fileMap turns files into path → content, failing on a duplicate or unsorted path.
func fileMap(t *testing.T, files []build.File) map[string]string {
	t.Helper()
	m := map[string]string{}
	for i, f := range files {
		if _, dup := m[f.Path]; dup {
			t.Errorf("file %q returned twice", f.Path)
		}
		if i > 0 && files[i-1].Path >= f.Path {
			t.Errorf("files not sorted: %q before %q", files[i-1].Path, f.Path)
		}
		m[f.Path] = string(f.Content)
	}
	return m
}

// wantFiles checks that got holds exactly want.
func wantFiles(t *testing.T, got []build.File, want map[string]string) {
	t.Helper()
	m := fileMap(t, got)
	for p, c := range want {
		if g, ok := m[p]; !ok {
			t.Errorf("file %q missing (have %v)", p, keys(m))
		} else if g != c {
			t.Errorf("file %q = %q, want %q", p, g, c)
		}
	}
	for p := range m {
		if _, ok := want[p]; !ok {
			t.Errorf("unexpected file %q", p)
		}
	}
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// wantErr checks that err matches kind and its message contains each of parts.
func wantErr(t *testing.T, err, kind error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one matching %v", kind)
	}
	if !errors.Is(err, kind) {
		t.Errorf("error %q does not match %v", err, kind)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

var mainFilesC2 = map[string]string{
	"index.js":       "export default 'v2'",
	"README.md":      "# test",
	"fn/index.js":    "import u from './lib/util.js'",
	"fn/lib/util.js": "export default 1",
	"fn/link.js":     "export default 1",
	"fn/shared/s.js": "export const s = 2",
	"shared/s.js":    "export const s = 2",
}

// TestGitRefs fetches each kind of revision, over file:// and over smart HTTP.
func TestGitRefs(t *testing.T) {
	tr := newTestRepo(t)
	v1 := map[string]string{
		"index.js":       "export default 'v1'",
		"README.md":      "# test",
		"fn/index.js":    "import u from './lib/util.js'",
		"fn/lib/util.js": "export default 1",
	}
	dev := map[string]string{"dev.js": "dev"}
	for k, v := range mainFilesC2 {
		dev[k] = v
	}
	transports := map[string]string{
		"file": "file://" + tr.dir,
		"http": serveRepo(t, tr, "", ""),
	}
	cases := []struct {
		name       string
		ref        GitRef
		wantCommit string
		want       map[string]string
	}{
		{"default branch", GitRef{}, tr.c2, mainFilesC2},
		{"branch", GitRef{Branch: "dev"}, tr.c3, dev},
		{"annotated tag", GitRef{Tag: "v1.0.0"}, tr.c1, v1},
		{"lightweight tag", GitRef{Tag: "v1-light"}, tr.c1, v1},
		{"tip commit", GitRef{Commit: tr.c3}, tr.c3, dev},
		{"full commit not a tip", GitRef{Commit: tr.c1}, tr.c1, v1},
		{"short commit", GitRef{Commit: tr.c1[:7]}, tr.c1, v1},
		{"upper-case short commit", GitRef{Commit: strings.ToUpper(tr.c2[:10])}, tr.c2, mainFilesC2},
		{"path", GitRef{Path: "fn"}, tr.c2, map[string]string{
			"index.js":    "import u from './lib/util.js'",
			"lib/util.js": "export default 1",
			"link.js":     "export default 1",
			"shared/s.js": "export const s = 2",
		}},
		{"path with slashes at tag", GitRef{Path: "/fn/lib/", Tag: "v1.0.0"}, tr.c1, map[string]string{"util.js": "export default 1"}},
	}
	f := &Fetcher{AllowFile: true}
	for tname, repoURL := range transports {
		for _, c := range cases {
			t.Run(tname+"/"+c.name, func(t *testing.T) {
				ref := c.ref
				ref.Repository = repoURL
				files, commit, err := f.Git(context.Background(), ref)
				if err != nil {
					t.Fatal(err)
				}
				if commit != c.wantCommit {
					t.Errorf("commit = %s, want %s", commit, c.wantCommit)
				}
				wantFiles(t, files, c.want)
			})
		}
	}
}

// TestGitErrors checks that each failure says what was asked for and why.
func TestGitErrors(t *testing.T) {
	tr := newTestRepo(t)
	fileURL := "file://" + tr.dir
	httpURL := serveRepo(t, tr, "", "")
	f := &Fetcher{AllowFile: true}

	for name, repo := range map[string]string{"file": fileURL, "http": httpURL} {
		t.Run(name, func(t *testing.T) {
			_, _, err := f.Git(context.Background(), GitRef{Repository: repo, Branch: "mian"})
			wantErr(t, err, ErrNotFound, `git: branch "mian" not found in `+repo, "(branches: dev, main)")
			_, _, err = f.Git(context.Background(), GitRef{Repository: repo, Tag: "v9"})
			wantErr(t, err, ErrNotFound, `git: tag "v9" not found in `+repo, "(tags: v1-light, v1.0.0)")
			_, _, err = f.Git(context.Background(), GitRef{Repository: repo, Commit: "0123456789abcdef"})
			wantErr(t, err, ErrNotFound, `git: commit "0123456789abcdef" not found in `+repo)
			_, _, err = f.Git(context.Background(), GitRef{Repository: repo, Path: "nope"})
			wantErr(t, err, ErrNotFound, `git: directory "nope" not found in `+repo, "at commit "+tr.c2)
			_, _, err = f.Git(context.Background(), GitRef{Repository: repo, Path: "index.js"})
			wantErr(t, err, ErrNotFound, `directory "index.js" not found`)
		})
	}

	_, _, err := f.Git(context.Background(), GitRef{Repository: "file://" + filepath.Join(tr.dir, "missing")})
	wantErr(t, err, ErrNotFound, "git: repository file://"+filepath.Join(tr.dir, "missing")+" not found")
	_, _, err = f.Git(context.Background(), GitRef{Repository: strings.Replace(httpURL, "fn.git", "other.git", 1)})
	wantErr(t, err, ErrNotFound, "other.git not found", "if it is private, give credentials")

	_, _, err = (&Fetcher{}).Git(context.Background(), GitRef{Repository: fileURL})
	wantErr(t, err, ErrInvalid, "file:// repositories are not allowed")

	_, _, err = f.Git(context.Background(), GitRef{Repository: fileURL, Branch: "main", Tag: "v1.0.0"})
	wantErr(t, err, ErrInvalid, "at most one of branch, tag and commit")
	_, _, err = f.Git(context.Background(), GitRef{Repository: fileURL, Commit: "abc"})
	wantErr(t, err, ErrInvalid, `commit "abc" is not a hexadecimal hash of 7 to 40 digits`)
	_, _, err = f.Git(context.Background(), GitRef{Repository: fileURL, Path: "fn/../../x"})
	wantErr(t, err, ErrInvalid, "must stay inside the repository")
	_, _, err = f.Git(context.Background(), GitRef{Repository: "git@github.com:acme/fn.git"})
	wantErr(t, err, ErrInvalid, "only https://, http:// and file:// repositories are supported, not ssh")
}

// TestGitUnreachable names the host that could not be reached.
func TestGitUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, _, err = (&Fetcher{}).Git(context.Background(), GitRef{Repository: "http://" + addr + "/fn.git"})
	wantErr(t, err, ErrUnreachable, "git: fetching http://"+addr+"/fn.git: cannot reach "+addr+": connection refused")
}

// TestGitCredentials: a server asking for basic auth gets the ref's username and password.
func TestGitCredentials(t *testing.T) {
	tr := newTestRepo(t)
	repo := serveRepo(t, tr, "bot", "s3cret")
	f := &Fetcher{}
	_, _, err := f.Git(context.Background(), GitRef{Repository: repo})
	wantErr(t, err, ErrDenied, "git: repository "+repo+" requires credentials")
	_, _, err = f.Git(context.Background(), GitRef{Repository: repo, Username: "bot", Password: "wrong"})
	wantErr(t, err, ErrDenied, "refused the credentials")
	files, commit, err := f.Git(context.Background(), GitRef{Repository: repo, Username: "bot", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if commit != tr.c2 || len(files) != len(mainFilesC2) {
		t.Errorf("got commit %s and %d files, want %s and %d", commit, len(files), tr.c2, len(mainFilesC2))
	}
	// Credentials in the URL never reach a message.
	withSecret := strings.Replace(repo, "http://", "http://bot:s3cret@", 1)
	_, _, err = f.Git(context.Background(), GitRef{Repository: withSecret, Branch: "none"})
	wantErr(t, err, ErrNotFound, `branch "none" not found in `+repo)
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q shows the password", err)
	}
}

// TestGitLimits: large files are left out, a repository over MaxBytes fails, links may not
// leave the repository, and cancellation stops the fetch.
func TestGitLimits(t *testing.T) {
	tr := newTestRepo(t)
	repo := "file://" + tr.dir

	files, _, err := (&Fetcher{AllowFile: true, maxFileBytes: 20}).Git(context.Background(), GitRef{Repository: repo, Path: "fn"})
	if err != nil {
		t.Fatal(err)
	}
	// fn/index.js is 29 bytes; the others are smaller.
	wantFiles(t, files, map[string]string{
		"lib/util.js": "export default 1",
		"link.js":     "export default 1",
		"shared/s.js": "export const s = 2",
	})

	_, _, err = (&Fetcher{AllowFile: true, MaxBytes: 1024}).Git(context.Background(), GitRef{Repository: repo})
	wantErr(t, err, ErrTooLarge, "is larger than the limit of 1 KiB")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err = (&Fetcher{AllowFile: true}).Git(ctx, GitRef{Repository: serveRepo(t, tr, "", "")})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled fetch: got %v, want context.Canceled", err)
	}

	// A link out of the repository.
	wt, _ := tr.git.Worktree()
	if err := os.Symlink("../../../etc/passwd", filepath.Join(tr.dir, "fn", "evil")); err != nil {
		t.Fatal(err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "T", Email: "t@example.com", When: time.Now()}
	if _, err := wt.Commit("evil", &git.CommitOptions{Author: sig}); err != nil {
		t.Fatal(err)
	}
	_, _, err = (&Fetcher{AllowFile: true}).Git(context.Background(), GitRef{Repository: repo, Path: "fn"})
	wantErr(t, err, ErrInvalid, `symbolic link "fn/evil" of `+repo+` points outside the repository (to "../../../etc/passwd")`)
}

// TestGitEndlessAdvertisement: a server that never ends its list of refs fails the fetch
// with ErrTooLarge instead of filling memory.
func TestGitEndlessAdvertisement(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
		enc := pktline.NewEncoder(w)
		enc.EncodeString("# service=git-upload-pack\n")
		enc.Flush()
		enc.EncodeString(strings.Repeat("a", 40) + " HEAD\x00ofs-delta\n")
		for i := 0; r.Context().Err() == nil; i++ {
			if err := enc.Encodef("%s refs/heads/b%d\n", strings.Repeat("a", 40), i); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	_, _, err := (&Fetcher{MaxBytes: 1 << 20}).Git(context.Background(), GitRef{Repository: srv.URL + "/fn.git"})
	wantErr(t, err, ErrTooLarge, "git: a response of "+srv.URL+"/fn.git is larger than the limit")
}
