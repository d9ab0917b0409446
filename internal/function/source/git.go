package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
	"github.com/go-git/go-git/v5/storage/memory"

	"apoxy.dev/apoxy/internal/function/build"
)

const (
	// defaultMaxGitFileBytes is the size above which a file of a repository is left out: a
	// function's sources are small, and repositories often hold large assets it never reads.
	defaultMaxGitFileBytes = 8 << 20
	// maxGitFiles bounds the number of files one fetch returns.
	maxGitFiles = 20000
	// maxSymlinkHops bounds the symbolic links followed to reach one file, which also ends
	// cycles of directory links.
	maxSymlinkHops = 8
)

// GitRef names a function's code in a Git repository.
type GitRef struct {
	// Repository is the clone URL: https://, http:// or (with Fetcher.AllowFile) file://.
	Repository string
	// Branch, Tag and Commit select the revision; at most one is set, and none means the
	// repository's default branch (its HEAD). Commit is a full or abbreviated (7+) hash.
	Branch, Tag, Commit string
	// Path is the directory of the repository holding the function; the files returned are
	// relative to it. Empty: the whole repository.
	Path string
	// Username and Password (or a token as the password) authenticate over HTTP(S).
	Username, Password string
}

// Git fetches the files of ref's revision, under ref.Path, and returns them with paths
// relative to ref.Path and sorted, together with the full hash of the commit they are from.
//
// It speaks Git's smart protocol itself (no git binary) and keeps everything in memory. A
// branch, a tag or the default branch is fetched with depth 1 when the server can do shallow
// fetches; a commit that is not the tip of a branch or tag needs the history of all of them.
// Files larger than 8 MiB are left out, symbolic links are followed inside the repository and
// refused when they leave it, and submodules are left out.
func (f *Fetcher) Git(ctx context.Context, ref GitRef) (files []build.File, commit string, err error) {
	repo := redactURL(ref.Repository)
	dir, commitPrefix, err := ref.validate(repo)
	if err != nil {
		return nil, "", err
	}
	ep, err := transport.NewEndpoint(ref.Repository)
	if err != nil {
		return nil, "", fail(ErrInvalid, err, "git: repository %q is not a valid URL", repo)
	}
	var (
		tr   transport.Transport
		auth transport.AuthMethod
	)
	switch ep.Protocol {
	case "http", "https":
		tr = githttp.NewClient(f.boundedClient("git: a response of " + repo))
		if ref.Username != "" || ref.Password != "" {
			auth = &githttp.BasicAuth{Username: ref.Username, Password: ref.Password}
		}
	case "file":
		if !f.AllowFile {
			return nil, "", fail(ErrInvalid, nil, "git: repository %s: file:// repositories are not allowed here", repo)
		}
		tr = server.NewClient(localLoader{})
	default:
		return nil, "", fail(ErrInvalid, nil, "git: repository %s: only https://, http:// and file:// repositories are supported, not %s", repo, ep.Protocol)
	}
	host := ep.Host
	if ep.Port != 0 {
		host = net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port))
	}
	g := &gitFetch{f: f, ref: ref, repo: repo, host: host, withAuth: auth != nil || ep.User != ""}

	sess, err := tr.NewUploadPackSession(ep, auth)
	if err != nil {
		return nil, "", g.transportError(ctx, err)
	}
	defer sess.Close()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		return nil, "", g.transportError(ctx, err)
	}

	wants, shallow, err := g.plan(ar, commitPrefix)
	if err != nil {
		return nil, "", err
	}
	st := memory.NewStorage()
	packBytes, err := g.fetchPack(ctx, sess, ar, st, wants, shallow)
	if err != nil {
		return nil, "", err
	}

	var c *object.Commit
	if commitPrefix != "" {
		c, err = g.findCommit(st, commitPrefix)
	} else {
		c, err = g.peel(st, wants[0])
	}
	if err != nil {
		return nil, "", err
	}
	root, err := c.Tree()
	if err != nil {
		return nil, "", fail(ErrInvalid, err, "git: reading the tree of commit %s in %s: %v", c.Hash, repo, err)
	}
	top := root
	if dir != "" {
		top, err = root.Tree(dir)
		if err != nil {
			return nil, "", fail(ErrNotFound, err, "git: directory %q not found in %s at commit %s", dir, repo, c.Hash)
		}
	}
	maxFile := f.maxFileBytes
	if maxFile <= 0 {
		maxFile = defaultMaxGitFileBytes
	}
	w := &gitWalker{st: st, root: root, repo: repo, maxFile: maxFile, max: f.maxBytes(), total: packBytes}
	if err := w.walk(ctx, top, dir, "", 0); err != nil {
		return nil, "", err
	}
	sort.Slice(w.files, func(i, j int) bool { return w.files[i].Path < w.files[j].Path })
	return w.files, c.Hash.String(), nil
}

// validate checks ref and returns its cleaned directory ("" for the root) and its lower-cased
// commit hash (or "").
func (ref GitRef) validate(repo string) (dir, commit string, err error) {
	if ref.Repository == "" {
		return "", "", fail(ErrInvalid, nil, "git: no repository given")
	}
	set := 0
	for _, s := range []string{ref.Branch, ref.Tag, ref.Commit} {
		if s != "" {
			set++
		}
	}
	if set > 1 {
		return "", "", fail(ErrInvalid, nil, "git: %s: give at most one of branch, tag and commit", repo)
	}
	if ref.Commit != "" {
		commit = strings.ToLower(ref.Commit)
		if len(commit) < 7 || len(commit) > 40 || strings.Trim(commit, "0123456789abcdef") != "" {
			return "", "", fail(ErrInvalid, nil, "git: commit %q is not a hexadecimal hash of 7 to 40 digits", ref.Commit)
		}
	}
	dir = path.Clean("/" + ref.Path)[1:]
	if ref.Path != "" && (strings.Contains(ref.Path, "\\") || hasDotDot(ref.Path)) {
		return "", "", fail(ErrInvalid, nil, "git: path %q must stay inside the repository", ref.Path)
	}
	return dir, commit, nil
}

// hasDotDot reports whether p has a ".." element.
func hasDotDot(p string) bool {
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return true
		}
	}
	return false
}

// gitFetch is one Git fetch's request, for its error messages.
type gitFetch struct {
	f        *Fetcher
	ref      GitRef
	repo     string // redacted URL
	host     string
	withAuth bool
}

// transportError explains an error of the Git transport.
func (g *gitFetch) transportError(ctx context.Context, err error) error {
	var httpErr *githttp.Err
	switch {
	case ctx.Err() != nil:
		return fail(ErrUnreachable, ctx.Err(), "git: fetching %s: %v", g.repo, ctx.Err())
	case errors.Is(err, transport.ErrRepositoryNotFound):
		hint := ""
		if !g.withAuth && !strings.HasPrefix(g.repo, "file:") {
			hint = " (if it is private, give credentials)"
		}
		return fail(ErrNotFound, err, "git: repository %s not found%s", g.repo, hint)
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		return fail(ErrNotFound, err, "git: repository %s is empty", g.repo)
	case errors.Is(err, transport.ErrAuthenticationRequired):
		if g.withAuth {
			return fail(ErrDenied, err, "git: repository %s refused the credentials", g.repo)
		}
		return fail(ErrDenied, err, "git: repository %s requires credentials", g.repo)
	case errors.Is(err, transport.ErrAuthorizationFailed):
		return fail(ErrDenied, err, "git: access to repository %s is denied", g.repo)
	case errors.As(err, &httpErr) && httpErr.Response != nil:
		kind := ErrInvalid
		if httpErr.Response.StatusCode >= 500 || httpErr.Response.StatusCode == http.StatusTooManyRequests {
			kind = ErrUnreachable
		}
		return fail(kind, err, "git: %s answered %s", g.repo, httpErr.Response.Status)
	}
	host := g.host
	if host == "" {
		host = g.repo
	}
	return transportError(ctx, err, "git: fetching "+g.repo, host)
}

// plan chooses the objects to ask for and whether a shallow fetch will do. Branch, tag and
// default-branch requests want that one ref; a commit that is some ref's tip (or a tag's
// target) wants that ref; any other commit wants itself when the server allows it, else every
// branch and tag, whose history is then searched.
func (g *gitFetch) plan(ar *packp.AdvRefs, commitPrefix string) (wants []plumbing.Hash, shallow bool, err error) {
	switch {
	case g.ref.Branch != "":
		h, ok := ar.References[plumbing.NewBranchReferenceName(g.ref.Branch).String()]
		if !ok {
			return nil, false, fail(ErrNotFound, nil, "git: branch %q not found in %s%s", g.ref.Branch, g.repo, listRefs(ar, "refs/heads/", "branches"))
		}
		return []plumbing.Hash{h}, true, nil
	case g.ref.Tag != "":
		h, ok := ar.References[plumbing.NewTagReferenceName(g.ref.Tag).String()]
		if !ok {
			return nil, false, fail(ErrNotFound, nil, "git: tag %q not found in %s%s", g.ref.Tag, g.repo, listRefs(ar, "refs/tags/", "tags"))
		}
		return []plumbing.Hash{h}, true, nil
	case commitPrefix != "":
		match := map[plumbing.Hash]plumbing.Hash{} // commit → the advertised object that leads to it
		for name, h := range ar.References {
			if strings.HasPrefix(h.String(), commitPrefix) {
				match[h] = h
			}
			if p, ok := ar.Peeled[name]; ok && strings.HasPrefix(p.String(), commitPrefix) {
				match[p] = h
			}
		}
		if ar.Head != nil && strings.HasPrefix(ar.Head.String(), commitPrefix) {
			match[*ar.Head] = *ar.Head
		}
		if len(match) == 1 {
			for _, want := range match {
				return []plumbing.Hash{want}, true, nil
			}
		}
		if len(match) == 0 && len(commitPrefix) == 40 && ar.Capabilities.Supports(capability.AllowReachableSHA1InWant) {
			return []plumbing.Hash{plumbing.NewHash(commitPrefix)}, true, nil
		}
		// Every branch and tag (not pull requests and other namespaces), in full.
		seen := map[plumbing.Hash]bool{}
		for name, h := range ar.References {
			if (strings.HasPrefix(name, "refs/heads/") || strings.HasPrefix(name, "refs/tags/")) && !seen[h] {
				seen[h] = true
				wants = append(wants, h)
			}
		}
		if ar.Head != nil && !seen[*ar.Head] {
			wants = append(wants, *ar.Head)
		}
		if len(wants) == 0 {
			return nil, false, fail(ErrNotFound, nil, "git: commit %q not found in %s: it has no branches or tags", commitPrefix, g.repo)
		}
		sort.Slice(wants, func(i, j int) bool { return wants[i].String() < wants[j].String() })
		return wants, false, nil
	default:
		if ar.Head == nil {
			return nil, false, fail(ErrNotFound, nil, "git: repository %s has no default branch (HEAD); give a branch, tag or commit", g.repo)
		}
		return []plumbing.Hash{*ar.Head}, true, nil
	}
}

// listRefs is " (kind: a, b, ...)" for the advertised refs under prefix, for a not-found
// message: the user most likely mistyped one of them.
func listRefs(ar *packp.AdvRefs, prefix, kind string) string {
	var names []string
	for name := range ar.References {
		if strings.HasPrefix(name, prefix) && !strings.HasSuffix(name, "^{}") {
			names = append(names, strings.TrimPrefix(name, prefix))
		}
	}
	if len(names) == 0 {
		return fmt.Sprintf(" (it has no %s)", kind)
	}
	sort.Strings(names)
	more := ""
	if len(names) > 10 {
		more = fmt.Sprintf(", and %d more", len(names)-10)
		names = names[:10]
	}
	return fmt.Sprintf(" (%s: %s%s)", kind, strings.Join(names, ", "), more)
}

// fetchPack asks for wants (with depth 1 when shallow and the server can) and stores the pack
// in st, bounded by MaxBytes. It returns the pack's size, which counts towards the bound.
func (g *gitFetch) fetchPack(ctx context.Context, sess transport.UploadPackSession, ar *packp.AdvRefs, st *memory.Storage, wants []plumbing.Hash, shallow bool) (int64, error) {
	req := packp.NewUploadPackRequestFromCapabilities(ar.Capabilities)
	req.Wants = wants
	if shallow && ar.Capabilities.Supports(capability.Shallow) {
		req.Depth = packp.DepthCommits(1)
		if err := req.Capabilities.Set(capability.Shallow); err != nil {
			return 0, fail(ErrInvalid, err, "git: fetching %s: %v", g.repo, err)
		}
	}
	if ar.Capabilities.Supports(capability.NoProgress) {
		if err := req.Capabilities.Set(capability.NoProgress); err != nil {
			return 0, fail(ErrInvalid, err, "git: fetching %s: %v", g.repo, err)
		}
	}
	resp, err := sess.UploadPack(ctx, req)
	if err != nil {
		return 0, g.transportError(ctx, err)
	}
	defer resp.Close()
	var r io.Reader = resp
	switch {
	case req.Capabilities.Supports(capability.Sideband64k):
		r = sideband.NewDemuxer(sideband.Sideband64k, resp)
	case req.Capabilities.Supports(capability.Sideband):
		r = sideband.NewDemuxer(sideband.Sideband, resp)
	}
	max := g.f.maxBytes()
	lr := newLimitedReader(&ctxReader{ctx: ctx, r: r}, max, "git: the pack of "+g.repo)
	if err := packfile.UpdateObjectStorage(st, lr); err != nil {
		var se *Error
		if errors.As(err, &se) {
			return 0, se
		}
		return 0, g.transportError(ctx, err)
	}
	return max - lr.n, nil
}

// ctxReader fails reads once ctx is done, for readers that do not watch a context themselves.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// peel is the commit h names, through an annotated tag.
func (g *gitFetch) peel(st storer.EncodedObjectStorer, h plumbing.Hash) (*object.Commit, error) {
	for range maxSymlinkHops {
		obj, err := object.GetObject(st, h)
		if err != nil {
			return nil, fail(ErrInvalid, err, "git: %s did not send object %s: %v", g.repo, h, err)
		}
		switch o := obj.(type) {
		case *object.Commit:
			return o, nil
		case *object.Tag:
			h = o.Target
		default:
			return nil, fail(ErrInvalid, nil, "git: %s in %s is a %s, not a commit", g.what(), g.repo, obj.Type())
		}
	}
	return nil, fail(ErrInvalid, nil, "git: %s in %s: too many nested tags", g.what(), g.repo)
}

// what names the requested revision for a message.
func (g *gitFetch) what() string {
	switch {
	case g.ref.Branch != "":
		return fmt.Sprintf("branch %q", g.ref.Branch)
	case g.ref.Tag != "":
		return fmt.Sprintf("tag %q", g.ref.Tag)
	case g.ref.Commit != "":
		return fmt.Sprintf("commit %q", g.ref.Commit)
	}
	return "the default branch"
}

// findCommit is the one fetched commit whose hash starts with prefix.
func (g *gitFetch) findCommit(st *memory.Storage, prefix string) (*object.Commit, error) {
	notFound := fail(ErrNotFound, nil, "git: commit %q not found in %s (searched its branches and tags)", prefix, g.repo)
	if len(prefix) == 40 {
		c, err := object.GetCommit(st, plumbing.NewHash(prefix))
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			return nil, notFound
		}
		if err != nil {
			return nil, fail(ErrInvalid, err, "git: reading commit %s of %s: %v", prefix, g.repo, err)
		}
		return c, nil
	}
	iter, err := st.IterEncodedObjects(plumbing.CommitObject)
	if err != nil {
		return nil, fail(ErrInvalid, err, "git: reading the commits of %s: %v", g.repo, err)
	}
	var found []plumbing.Hash
	_ = iter.ForEach(func(o plumbing.EncodedObject) error {
		if strings.HasPrefix(o.Hash().String(), prefix) {
			found = append(found, o.Hash())
		}
		return nil
	})
	switch len(found) {
	case 0:
		return nil, notFound
	case 1:
		return g.peel(st, found[0])
	}
	sort.Slice(found, func(i, j int) bool { return found[i].String() < found[j].String() })
	return nil, fail(ErrInvalid, nil, "git: commit %q is ambiguous in %s: %s and %s both match; give more digits", prefix, g.repo, found[0], found[1])
}

// gitWalker collects the files of a tree.
type gitWalker struct {
	st      storer.EncodedObjectStorer
	root    *object.Tree // the repository's, for following links
	repo    string
	files   []build.File
	total   int64 // bytes so far, the pack's included
	max     int64
	maxFile int64
}

// walk adds the files of t, which is at repoDir in the repository, under outDir. hops is the
// number of symbolic links followed to get here.
func (w *gitWalker) walk(ctx context.Context, t *object.Tree, repoDir, outDir string, hops int) error {
	if err := ctx.Err(); err != nil {
		return fail(ErrUnreachable, err, "git: reading %s: %v", w.repo, err)
	}
	for i := range t.Entries {
		e := &t.Entries[i]
		if e.Name == ".git" || e.Name == "" || e.Name == "." || e.Name == ".." || strings.Contains(e.Name, "/") {
			continue
		}
		repoPath, outPath := path.Join(repoDir, e.Name), path.Join(outDir, e.Name)
		switch e.Mode {
		case filemode.Dir:
			sub, err := object.GetTree(w.st, e.Hash)
			if err != nil {
				return fail(ErrInvalid, err, "git: reading directory %q of %s: %v", repoPath, w.repo, err)
			}
			if err := w.walk(ctx, sub, repoPath, outPath, hops); err != nil {
				return err
			}
		case filemode.Regular, filemode.Executable, filemode.Deprecated:
			if err := w.addBlob(e.Hash, repoPath, outPath); err != nil {
				return err
			}
		case filemode.Symlink:
			if err := w.link(ctx, e.Hash, repoPath, outPath, hops); err != nil {
				return err
			}
		default:
			// A submodule is a commit of another repository: not fetched.
		}
	}
	return nil
}

// link follows the symbolic link at repoPath (its target is blob h) and adds what it points to
// under outPath: a file, or a directory's files. A target outside the repository is refused; a
// dangling link is left out, as a checkout would leave a link to nothing.
func (w *gitWalker) link(ctx context.Context, h plumbing.Hash, repoPath, outPath string, hops int) error {
	if hops >= maxSymlinkHops {
		return fail(ErrInvalid, nil, "git: %s: too many levels of symbolic links at %q", w.repo, repoPath)
	}
	blob, err := object.GetBlob(w.st, h)
	if err != nil {
		return fail(ErrInvalid, err, "git: reading symbolic link %q of %s: %v", repoPath, w.repo, err)
	}
	if blob.Size > 4096 {
		return fail(ErrInvalid, nil, "git: symbolic link %q of %s has a %d-byte target", repoPath, w.repo, blob.Size)
	}
	target, err := readBlob(blob)
	if err != nil {
		return fail(ErrInvalid, err, "git: reading symbolic link %q of %s: %v", repoPath, w.repo, err)
	}
	resolved := path.Join(path.Dir(repoPath), string(target))
	if path.IsAbs(string(target)) || resolved == ".." || strings.HasPrefix(resolved, "../") {
		return fail(ErrInvalid, nil, "git: symbolic link %q of %s points outside the repository (to %q)", repoPath, w.repo, target)
	}
	if resolved == "." {
		return w.walk(ctx, w.root, "", outPath, hops+1)
	}
	e, err := w.root.FindEntry(resolved)
	if err != nil {
		return nil // dangling
	}
	switch e.Mode {
	case filemode.Dir:
		sub, err := object.GetTree(w.st, e.Hash)
		if err != nil {
			return fail(ErrInvalid, err, "git: reading directory %q of %s: %v", resolved, w.repo, err)
		}
		return w.walk(ctx, sub, resolved, outPath, hops+1)
	case filemode.Regular, filemode.Executable, filemode.Deprecated:
		return w.addBlob(e.Hash, resolved, outPath)
	case filemode.Symlink:
		return w.link(ctx, e.Hash, resolved, outPath, hops+1)
	}
	return nil
}

// addBlob adds blob h (the file at repoPath) as outPath, unless it is over the file size limit.
func (w *gitWalker) addBlob(h plumbing.Hash, repoPath, outPath string) error {
	blob, err := object.GetBlob(w.st, h)
	if err != nil {
		return fail(ErrInvalid, err, "git: reading file %q of %s: %v", repoPath, w.repo, err)
	}
	if blob.Size > w.maxFile {
		return nil
	}
	if len(w.files) >= maxGitFiles {
		return fail(ErrTooLarge, nil, "git: %s has more than %d files to fetch", w.repo, maxGitFiles)
	}
	if w.total+blob.Size > w.max {
		return tooLarge("git: "+w.repo+" (its pack and files)", w.max)
	}
	data, err := readBlob(blob)
	if err != nil {
		return fail(ErrInvalid, err, "git: reading file %q of %s: %v", repoPath, w.repo, err)
	}
	w.total += int64(len(data))
	w.files = append(w.files, build.File{Path: outPath, Content: data})
	return nil
}

func readBlob(b *object.Blob) ([]byte, error) {
	r, err := b.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, b.Size))
}

// localLoader opens file:// repositories (bare or with a work tree) for go-git's in-process
// upload-pack, so that no git binary is needed.
type localLoader struct{}

// Load opens the repository at ep.Path.
func (localLoader) Load(ep *transport.Endpoint) (storer.Storer, error) {
	r, err := git.PlainOpen(ep.Path)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, transport.ErrRepositoryNotFound
	}
	if err != nil {
		return nil, err
	}
	return r.Storer, nil
}
