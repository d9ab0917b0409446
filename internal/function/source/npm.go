package source

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"

	"apoxy.dev/apoxy/internal/function/build"
)

// DefaultNpmRegistry is the registry used when none is given.
const DefaultNpmRegistry = "https://registry.npmjs.org"

// maxTarEntries bounds the entries of one tarball, directories included: many empty entries
// cost memory without adding bytes.
const maxTarEntries = 20000

// NpmPackage is one version of a package fetched from an npm registry.
type NpmPackage struct {
	// Name is the package's name, as asked for.
	Name string
	// Version is the exact version the requested version or dist-tag resolved to.
	Version string
	// Integrity is the tarball's checked digest as a Subresource Integrity string
	// (sha512-<base64>, or sha1-<base64> for a registry that only gives a shasum): what a
	// revision records as its source.
	Integrity string
	// Main is the package's entry module, from the "main" of its package.json resolved to one
	// of Files the way Node does (lib/index → lib/index.js); index.js when it has none.
	Main string
	// Files are the tarball's regular files, with the leading "package/" removed.
	Files []build.File
}

// Npm fetches version (an exact version like 1.2.3, or a dist-tag like latest; empty means
// latest) of package name from registry (empty means DefaultNpmRegistry). It reads the
// package's metadata, downloads the version's tarball, checks it against the registry's
// integrity record and unpacks it in memory. A tarball whose entries are links, absolute
// or leave the package is refused.
func (f *Fetcher) Npm(ctx context.Context, registry, name, version string) (*NpmPackage, error) {
	if registry == "" {
		registry = DefaultNpmRegistry
	}
	registry = strings.TrimRight(registry, "/")
	reg, err := url.Parse(registry)
	if err != nil || (reg.Scheme != "https" && reg.Scheme != "http") || reg.Host == "" {
		return nil, fail(ErrInvalid, err, "npm: registry %q is not an http(s) URL", redactURL(registry))
	}
	shownRegistry := redactURL(registry)
	if err := validNpmName(name); err != nil {
		return nil, err
	}
	if version == "" {
		version = "latest"
	}

	// Scoped names keep their @ and escape their slash: @scope%2fname.
	metaURL := registry + "/" + strings.Replace(name, "/", "%2f", 1)
	body, err := f.get(ctx, metaURL, "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*",
		"npm: fetching package "+name+" from "+shownRegistry,
		func(code int) string {
			if code == http.StatusNotFound {
				return fmt.Sprintf("npm: package %q not found on %s", name, shownRegistry)
			}
			return ""
		})
	if err != nil {
		return nil, err
	}
	meta, err := readAll(body, f.maxBytes(), fmt.Sprintf("npm: the metadata of %s on %s", name, shownRegistry))
	body.Close()
	if err != nil {
		return nil, transportError(ctx, err, "npm: fetching package "+name+" from "+shownRegistry, reg.Host)
	}
	p, err := parsePackument(meta)
	if err != nil {
		return nil, fail(ErrInvalid, err, "npm: the metadata of %s on %s is not valid: %v", name, shownRegistry, err)
	}
	resolved, dist, err := p.resolve(name, version)
	if err != nil {
		return nil, err
	}
	id := name + "@" + resolved

	tarURL, err := url.Parse(dist.Tarball)
	if err != nil || (tarURL.Scheme != "https" && tarURL.Scheme != "http") || tarURL.Host == "" {
		return nil, fail(ErrInvalid, err, "npm: the tarball of %s has no http(s) URL (%q)", id, redactURL(dist.Tarball))
	}
	check, err := newIntegrityCheck(id, dist.Integrity, dist.Shasum)
	if err != nil {
		return nil, err
	}
	shownTarball := redactURL(dist.Tarball)
	body, err = f.get(ctx, dist.Tarball, "application/octet-stream, */*", "npm: downloading "+id+" from "+shownTarball,
		func(code int) string {
			if code == http.StatusNotFound {
				return fmt.Sprintf("npm: the tarball of %s is not found at %s", id, shownTarball)
			}
			return ""
		})
	if err != nil {
		return nil, err
	}
	tarball, err := readAll(io.TeeReader(body, check.h), f.maxBytes(), "npm: the tarball of "+id)
	body.Close()
	if err != nil {
		return nil, transportError(ctx, err, "npm: downloading "+id+" from "+shownTarball, tarURL.Host)
	}
	integrity, err := check.verify()
	if err != nil {
		return nil, err
	}
	files, err := extractTarball(bytes.NewReader(tarball), f.maxBytes(), id)
	if err != nil {
		return nil, err
	}
	return &NpmPackage{Name: name, Version: resolved, Integrity: integrity, Main: packageMain(files), Files: files}, nil
}

// validNpmName checks name is a package name npm accepts: lower-case URL-safe characters
// (legacy names may have capitals), at most 214 of them, optionally in a @scope/.
func validNpmName(name string) error {
	bad := func(why string) error {
		return fail(ErrInvalid, nil, "npm: %q is not a valid package name: %s", name, why)
	}
	if name == "" {
		return fail(ErrInvalid, nil, "npm: no package name given")
	}
	if len(name) > 214 {
		return bad("longer than 214 characters")
	}
	parts := []string{name}
	if strings.HasPrefix(name, "@") {
		scope, pkg, ok := strings.Cut(name[1:], "/")
		if !ok || scope == "" || pkg == "" {
			return bad("a scoped name is @scope/name")
		}
		parts = []string{scope, pkg}
	}
	for _, part := range parts {
		if strings.HasPrefix(part, ".") || strings.HasPrefix(part, "_") {
			return bad("it may not start with . or _")
		}
		for _, r := range part {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~!*'()", r)) {
				return bad(fmt.Sprintf("%q is not allowed", r))
			}
		}
	}
	return nil
}

// get GETs rawURL and returns the body of a 2xx answer. A network failure is described by
// transportError with what; another status by message(status code) when that is not empty,
// else as "<what>: <host> answered <status>".
func (f *Fetcher) get(ctx context.Context, rawURL, accept, what string, message func(code int) string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fail(ErrInvalid, err, "%s: %v", what, err)
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", "apoxy-edgefunction-fetcher")
	resp, err := f.client().Do(req)
	if err != nil {
		return nil, transportError(ctx, err, what, req.URL.Host)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.Body, nil
	}
	resp.Body.Close()
	kind := ErrInvalid
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		kind = ErrNotFound
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		kind = ErrDenied
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		kind = ErrUnreachable
	}
	if msg := message(resp.StatusCode); msg != "" {
		return nil, fail(kind, nil, "%s", msg)
	}
	return nil, fail(kind, nil, "%s: %s answered %s", what, req.URL.Host, resp.Status)
}

// packument is the part of a package's registry document that a fetch reads. Versions stay
// raw: only the chosen one is decoded, and popular packages have thousands.
type packument struct {
	DistTags map[string]string          `json:"dist-tags"`
	Versions map[string]json.RawMessage `json:"versions"`
}

// npmDist is where a version's tarball is and what it hashes to.
type npmDist struct {
	Tarball   string `json:"tarball"`
	Integrity string `json:"integrity"`
	Shasum    string `json:"shasum"`
}

func parsePackument(b []byte) (*packument, error) {
	var p packument
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// resolve turns version (exact, or a dist-tag) into an exact version present in p, and
// returns its dist.
func (p *packument) resolve(name, version string) (string, *npmDist, error) {
	exact := version
	if v, ok := p.DistTags[version]; ok {
		exact = v
	} else if _, ok := p.Versions[version]; !ok {
		// npm accepts v1.2.3 and =1.2.3 for 1.2.3.
		if trimmed := strings.TrimLeft(version, "v="); trimmed != version {
			if _, ok := p.Versions[trimmed]; ok {
				exact = trimmed
			}
		}
	}
	raw, ok := p.Versions[exact]
	if !ok {
		if exact != version {
			return "", nil, fail(ErrInvalid, nil, "npm: dist-tag %q of %s names version %s, which the registry does not list", version, name, exact)
		}
		hint := ""
		if latest, ok := p.DistTags["latest"]; ok {
			hint = " (latest is " + latest + ")"
		} else if len(p.Versions) == 0 {
			hint = " (it has no versions)"
		}
		if strings.ContainsAny(version, "^~<>=*|xX ") {
			hint += "; version ranges are not supported: give an exact version or a dist-tag"
		}
		return "", nil, fail(ErrNotFound, nil, "npm: version %q of %s not found%s", version, name, hint)
	}
	var v struct {
		Dist npmDist `json:"dist"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", nil, fail(ErrInvalid, err, "npm: the metadata of %s@%s is not valid: %v", name, exact, err)
	}
	if v.Dist.Tarball == "" {
		return "", nil, fail(ErrInvalid, nil, "npm: the registry gives no tarball for %s@%s", name, exact)
	}
	return exact, &v.Dist, nil
}

// integrityCheck hashes a tarball as it is read and compares it with the registry's record.
type integrityCheck struct {
	id    string
	alg   string   // SRI name of the algorithm: sha512, sha384, sha256 or sha1
	want  [][]byte // acceptable digests (SRI may list several of one algorithm)
	shown string   // the record, for messages
	h     hash.Hash
}

// sriAlgorithms are the supported integrity algorithms, strongest first.
var sriAlgorithms = []struct {
	name string
	new  func() hash.Hash
}{
	{"sha512", sha512.New},
	{"sha384", sha512.New384},
	{"sha256", sha256.New},
	{"sha1", sha1.New},
}

// newIntegrityCheck reads the record for id: the SRI integrity (the strongest algorithm it
// lists is checked) or, only without one, the hex sha1 shasum. A version with neither is
// refused: the tarball could not be checked.
func newIntegrityCheck(id, integrity, shasum string) (*integrityCheck, error) {
	if integrity = strings.TrimSpace(integrity); integrity != "" {
		byAlg := map[string][][]byte{}
		for _, tok := range strings.Fields(integrity) {
			alg, b64, ok := strings.Cut(tok, "-")
			if !ok {
				continue
			}
			b64, _, _ = strings.Cut(b64, "?") // SRI options
			d, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				continue
			}
			byAlg[alg] = append(byAlg[alg], d)
		}
		for _, a := range sriAlgorithms {
			if want := byAlg[a.name]; len(want) > 0 {
				return &integrityCheck{id: id, alg: a.name, want: want, shown: integrity, h: a.new()}, nil
			}
		}
		return nil, fail(ErrIntegrity, nil, "npm: the integrity %q of %s uses no supported algorithm (sha512, sha384, sha256, sha1)", integrity, id)
	}
	if shasum != "" {
		d, err := hex.DecodeString(shasum)
		if err != nil || len(d) != sha1.Size {
			return nil, fail(ErrIntegrity, err, "npm: the shasum %q of %s is not a hex SHA-1", shasum, id)
		}
		return &integrityCheck{id: id, alg: "sha1", want: [][]byte{d}, shown: "sha1-" + base64.StdEncoding.EncodeToString(d), h: sha1.New()}, nil
	}
	return nil, fail(ErrIntegrity, nil, "npm: the registry gives no integrity or shasum for %s; an unverified tarball is refused", id)
}

// verify compares what was hashed with the record and returns the SRI of the tarball.
func (c *integrityCheck) verify() (string, error) {
	got := c.h.Sum(nil)
	gotSRI := c.alg + "-" + base64.StdEncoding.EncodeToString(got)
	for _, w := range c.want {
		if subtle.ConstantTimeCompare(w, got) == 1 {
			return gotSRI, nil
		}
	}
	return "", fail(ErrIntegrity, nil, "npm: tarball integrity mismatch for %s: want %s, got %s", c.id, c.shown, gotSRI)
}

// extractTarball unpacks a gzip-compressed tar of package id into memory. It drops each
// entry's first path element (npm's "package/"), and entries with no other; directories are
// implied. Links, devices, absolute paths and paths that leave the package are refused rather
// than skipped, since no honest package has them. The bytes unpacked are bounded by max.
func extractTarball(r io.Reader, max int64, id string) ([]build.File, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fail(ErrInvalid, err, "npm: the tarball of %s is not gzip-compressed: %v", id, err)
	}
	defer gz.Close()
	tr := tar.NewReader(newLimitedReader(gz, max, "npm: the unpacked tarball of "+id))
	var files []build.File
	index := map[string]int{}
	for entries := 0; ; entries++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, tarError(id, err)
		}
		if entries >= maxTarEntries {
			return nil, fail(ErrTooLarge, nil, "npm: the tarball of %s has more than %d entries", id, maxTarEntries)
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		case tar.TypeDir, tar.TypeXGlobalHeader:
			continue
		case tar.TypeSymlink, tar.TypeLink:
			return nil, fail(ErrInvalid, nil, "npm: the tarball of %s has a link %q (to %q); links are refused", id, hdr.Name, hdr.Linkname)
		default:
			return nil, fail(ErrInvalid, nil, "npm: the tarball of %s has %q, which is not a regular file (type %q)", id, hdr.Name, hdr.Typeflag)
		}
		rel, err := tarPath(hdr.Name, id)
		if err != nil {
			return nil, err
		}
		if hdr.Size > max {
			return nil, tooLarge(fmt.Sprintf("npm: %q in the tarball of %s", hdr.Name, id), max)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, tarError(id, err)
		}
		if rel == "" {
			continue
		}
		if i, ok := index[rel]; ok {
			files[i].Content = data // tar semantics: the last entry of a path wins
			continue
		}
		index[rel] = len(files)
		files = append(files, build.File{Path: rel, Content: data})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// tarError explains an error reading the tarball of id.
func tarError(id string, err error) error {
	var se *Error
	if errors.As(err, &se) {
		return se
	}
	return fail(ErrInvalid, err, "npm: the tarball of %s is corrupt: %v", id, err)
}

// tarPath is an entry's path inside the package: name cleaned, with its first element
// dropped ("" when nothing is left). An absolute name, one with a backslash or NUL, or one that
// leaves the package is an error.
func tarPath(name, id string) (string, error) {
	if strings.ContainsAny(name, "\\\x00") {
		return "", fail(ErrInvalid, nil, "npm: the tarball of %s has an entry with a backslash or NUL in its name (%q)", id, name)
	}
	if strings.HasPrefix(name, "/") || (len(name) >= 2 && name[1] == ':') {
		return "", fail(ErrInvalid, nil, "npm: the tarball of %s has an absolute path %q", id, name)
	}
	clean := path.Clean(name)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fail(ErrInvalid, nil, "npm: the tarball of %s has an entry %q that leaves the package", id, name)
	}
	_, rel, ok := strings.Cut(clean, "/")
	if !ok {
		return "", nil
	}
	// The first element was not "..", so the rest cannot climb above the package: Clean
	// removed every inner "..".
	return rel, nil
}

// packageMain is the entry module named by the "main" of the package.json among files,
// resolved as Node resolves it; index.js when there is none.
func packageMain(files []build.File) string {
	have := map[string]bool{}
	var pkgJSON []byte
	for _, f := range files {
		have[f.Path] = true
		if f.Path == "package.json" {
			pkgJSON = f.Content
		}
	}
	var pkg struct {
		Main any `json:"main"`
	}
	_ = json.Unmarshal(pkgJSON, &pkg)
	main, _ := pkg.Main.(string)
	main = strings.TrimSpace(main)
	if main == "" {
		return "index.js"
	}
	clean := path.Clean("/" + main)[1:]
	if clean == "" || hasDotDot(main) {
		return "index.js"
	}
	for _, c := range []string{clean, clean + ".js", clean + ".mjs", clean + ".cjs", clean + ".json", clean + "/index.js", clean + "/index.mjs"} {
		if have[c] {
			return c
		}
	}
	return clean
}
