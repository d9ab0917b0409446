package source

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync"
	"testing"

	"apoxy.dev/apoxy/internal/function/build"
)

// tarEntry is one entry of a test tarball.
type tarEntry struct {
	name, body string
	typ        byte // 0: a regular file
	link       string
}

// makeTarball builds a gzip-compressed tar of entries, as npm pack does.
func makeTarball(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: 0o644, Linkname: e.link}
		if typ == tar.TypeXGlobalHeader {
			hdr = &tar.Header{Name: e.name, Typeflag: typ, PAXRecords: map[string]string{"comment": "git archive"}}
		}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sri512(b []byte) string {
	d := sha512.Sum512(b)
	return "sha512-" + base64.StdEncoding.EncodeToString(d[:])
}

// npmVersion is one version a test registry serves.
type npmVersion struct {
	tarball []byte
	// integrity and shasum are what the registry records; "auto" is the tarball's sha512 SRI
	// (integrity) or hex sha1 (shasum).
	integrity, shasum string
}

// npmRegistry is an httptest server shaped like the npm registry: GET /<name> (scoped names
// as /@scope%2fname) answers the package document, and tarballs are under /-/.
type npmRegistry struct {
	*httptest.Server
	mu       sync.Mutex
	packages map[string]map[string]npmVersion // name → version → tarball
	tags     map[string]map[string]string     // name → dist-tag → version
	paths    []string                         // escaped paths requested
}

func newNpmRegistry(t *testing.T) *npmRegistry {
	reg := &npmRegistry{packages: map[string]map[string]npmVersion{}, tags: map[string]map[string]string{}}
	reg.Server = httptest.NewServer(reg)
	t.Cleanup(reg.Close)
	return reg
}

func (reg *npmRegistry) add(name, version string, v npmVersion, tags ...string) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if reg.packages[name] == nil {
		reg.packages[name] = map[string]npmVersion{}
		reg.tags[name] = map[string]string{}
	}
	reg.packages[name][version] = v
	for _, tag := range tags {
		reg.tags[name][tag] = version
	}
}

func (reg *npmRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	p := r.URL.EscapedPath()
	reg.paths = append(reg.paths, p)
	if rest, ok := strings.CutPrefix(p, "/-/"); ok {
		name, version, _ := strings.Cut(rest, "/-/")
		name = strings.Replace(name, "%2f", "/", 1)
		v, ok := reg.packages[name][version]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(v.tarball)
		return
	}
	name := strings.Replace(strings.TrimPrefix(p, "/"), "%2f", "/", 1)
	if strings.Contains(name, "%") || strings.Count(name, "/") > 1 || (strings.Contains(name, "/") && !strings.HasPrefix(name, "@")) {
		http.Error(w, `{"error":"bad name"}`, http.StatusBadRequest)
		return
	}
	versions, ok := reg.packages[name]
	if !ok {
		http.Error(w, `{"error":"Not found"}`, http.StatusNotFound)
		return
	}
	doc := map[string]any{"name": name, "dist-tags": reg.tags[name]}
	vs := map[string]any{}
	for version, v := range versions {
		dist := map[string]any{"tarball": reg.URL + "/-/" + strings.Replace(name, "/", "%2f", 1) + "/-/" + version}
		switch v.integrity {
		case "auto":
			dist["integrity"] = sri512(v.tarball)
		case "":
		default:
			dist["integrity"] = v.integrity
		}
		switch v.shasum {
		case "auto":
			d := sha1.Sum(v.tarball)
			dist["shasum"] = hex.EncodeToString(d[:])
		case "":
		default:
			dist["shasum"] = v.shasum
		}
		vs[version] = map[string]any{"name": name, "version": version, "dist": dist}
	}
	doc["versions"] = vs
	w.Header().Set("Content-Type", "application/vnd.npm.install-v1+json")
	json.NewEncoder(w).Encode(doc)
}

// leftPad is a package tarball: package.json naming main ./lib/index (no extension).
func leftPad(t testing.TB, version string) []byte {
	return makeTarball(t,
		tarEntry{name: "package/", typ: tar.TypeDir},
		tarEntry{name: "package/package.json", body: `{"name":"left-pad","version":"` + version + `","main":"./lib/index"}`},
		tarEntry{name: "package/lib/index.js", body: "module.exports = '" + version + "'"},
		tarEntry{name: "package/README.md", body: "# left-pad"},
	)
}

func TestNpmResolve(t *testing.T) {
	reg := newNpmRegistry(t)
	tgz12, tgz13 := leftPad(t, "1.2.0"), leftPad(t, "1.3.0")
	reg.add("left-pad", "1.2.0", npmVersion{tarball: tgz12, integrity: "auto"}, "beta")
	reg.add("left-pad", "1.3.0", npmVersion{tarball: tgz13, integrity: "auto"}, "latest")
	f := &Fetcher{}

	for _, c := range []struct{ ask, want string }{{"", "1.3.0"}, {"latest", "1.3.0"}, {"beta", "1.2.0"}, {"1.2.0", "1.2.0"}, {"v1.2.0", "1.2.0"}} {
		pkg, err := f.Npm(context.Background(), reg.URL, "left-pad", c.ask)
		if err != nil {
			t.Fatalf("version %q: %v", c.ask, err)
		}
		if pkg.Version != c.want || pkg.Name != "left-pad" {
			t.Errorf("version %q resolved to %s@%s, want left-pad@%s", c.ask, pkg.Name, pkg.Version, c.want)
		}
		tgz := map[string][]byte{"1.2.0": tgz12, "1.3.0": tgz13}[c.want]
		if pkg.Integrity != sri512(tgz) {
			t.Errorf("integrity = %s, want %s", pkg.Integrity, sri512(tgz))
		}
		if pkg.Main != "lib/index.js" {
			t.Errorf("main = %q, want lib/index.js", pkg.Main)
		}
		wantFiles(t, pkg.Files, map[string]string{
			"package.json": `{"name":"left-pad","version":"` + c.want + `","main":"./lib/index"}`,
			"lib/index.js": "module.exports = '" + c.want + "'",
			"README.md":    "# left-pad",
		})
	}
}

func TestNpmScoped(t *testing.T) {
	reg := newNpmRegistry(t)
	reg.add("@acme/edge", "0.1.0", npmVersion{tarball: makeTarball(t,
		tarEntry{name: "package/package.json", body: `{"name":"@acme/edge"}`},
		tarEntry{name: "package/index.js", body: "export default {}"},
	), integrity: "auto"}, "latest")
	pkg, err := (&Fetcher{}).Npm(context.Background(), reg.URL+"/", "@acme/edge", "latest")
	if err != nil {
		t.Fatal(err)
	}
	if pkg.Version != "0.1.0" || pkg.Main != "index.js" || len(pkg.Files) != 2 {
		t.Errorf("got %s main %q with %d files, want 0.1.0 main index.js with 2", pkg.Version, pkg.Main, len(pkg.Files))
	}
	if reg.paths[0] != "/@acme%2fedge" {
		t.Errorf("package document requested as %q, want /@acme%%2fedge", reg.paths[0])
	}
}

func TestNpmIntegrity(t *testing.T) {
	reg := newNpmRegistry(t)
	tgz := leftPad(t, "1.0.0")
	other := sri512([]byte("something else"))
	reg.add("bad", "1.0.0", npmVersion{tarball: tgz, integrity: other}, "latest")
	reg.add("sha1only", "1.0.0", npmVersion{tarball: tgz, shasum: "auto"}, "latest")
	reg.add("badsha1", "1.0.0", npmVersion{tarball: tgz, shasum: strings.Repeat("ab", 20)}, "latest")
	reg.add("unverified", "1.0.0", npmVersion{tarball: tgz}, "latest")
	// Several algorithms: the strongest decides, so a wrong sha1 beside a right sha512 is fine.
	reg.add("multi", "1.0.0", npmVersion{tarball: tgz, integrity: "sha1-AAAAAAAAAAAAAAAAAAAAAAAAAAA= " + sri512(tgz)}, "latest")
	// A shasum does not rescue a wrong integrity.
	reg.add("badboth", "1.0.0", npmVersion{tarball: tgz, integrity: other, shasum: "auto"}, "latest")
	f := &Fetcher{}

	_, err := f.Npm(context.Background(), reg.URL, "bad", "latest")
	wantErr(t, err, ErrIntegrity, "npm: tarball integrity mismatch for bad@1.0.0: want "+other+", got "+sri512(tgz))
	_, err = f.Npm(context.Background(), reg.URL, "badboth", "latest")
	wantErr(t, err, ErrIntegrity, "tarball integrity mismatch")

	pkg, err := f.Npm(context.Background(), reg.URL, "sha1only", "latest")
	if err != nil {
		t.Fatal(err)
	}
	d := sha1.Sum(tgz)
	if want := "sha1-" + base64.StdEncoding.EncodeToString(d[:]); pkg.Integrity != want {
		t.Errorf("integrity = %s, want %s", pkg.Integrity, want)
	}
	_, err = f.Npm(context.Background(), reg.URL, "badsha1", "latest")
	wantErr(t, err, ErrIntegrity, "want sha1-")

	_, err = f.Npm(context.Background(), reg.URL, "unverified", "latest")
	wantErr(t, err, ErrIntegrity, "no integrity or shasum for unverified@1.0.0")

	pkg, err = f.Npm(context.Background(), reg.URL, "multi", "latest")
	if err != nil {
		t.Fatal(err)
	}
	if pkg.Integrity != sri512(tgz) {
		t.Errorf("integrity = %s, want the sha512 one", pkg.Integrity)
	}
}

func TestNpmNotFound(t *testing.T) {
	reg := newNpmRegistry(t)
	reg.add("left-pad", "1.3.0", npmVersion{tarball: leftPad(t, "1.3.0"), integrity: "auto"}, "latest")
	reg.add("left-pad", "1.2.0", npmVersion{tarball: leftPad(t, "1.2.0"), integrity: "auto"})
	f := &Fetcher{}

	_, err := f.Npm(context.Background(), reg.URL, "left-padx", "latest")
	wantErr(t, err, ErrNotFound, `npm: package "left-padx" not found on `+reg.URL)
	_, err = f.Npm(context.Background(), reg.URL, "left-pad", "9.9.9")
	wantErr(t, err, ErrNotFound, `npm: version "9.9.9" of left-pad not found (latest is 1.3.0)`)
	_, err = f.Npm(context.Background(), reg.URL, "left-pad", "^1.2.0")
	wantErr(t, err, ErrNotFound, "version ranges are not supported")
	_, err = f.Npm(context.Background(), reg.URL, "left-pad", "next")
	wantErr(t, err, ErrNotFound, `npm: version "next" of left-pad not found`)

	_, err = f.Npm(context.Background(), reg.URL, "../etc", "latest")
	wantErr(t, err, ErrInvalid, `npm: "../etc" is not a valid package name`)
	_, err = f.Npm(context.Background(), reg.URL, "@acme", "latest")
	wantErr(t, err, ErrInvalid, "a scoped name is @scope/name")
	_, err = f.Npm(context.Background(), "ftp://registry.example", "left-pad", "latest")
	wantErr(t, err, ErrInvalid, "is not an http(s) URL")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = f.Npm(context.Background(), "http://"+addr, "left-pad", "latest")
	wantErr(t, err, ErrUnreachable, "npm: fetching package left-pad from http://"+addr+": cannot reach "+addr+": connection refused")
}

func TestNpmUnsafeTarballs(t *testing.T) {
	cases := map[string]struct {
		entries []tarEntry
		want    string
	}{
		"traversal":      {[]tarEntry{{name: "package/../../etc/cron.d/x", body: "x"}}, `entry "package/../../etc/cron.d/x" that leaves the package`},
		"dotdot first":   {[]tarEntry{{name: "../x", body: "x"}}, "leaves the package"},
		"absolute":       {[]tarEntry{{name: "/etc/passwd", body: "x"}}, `absolute path "/etc/passwd"`},
		"symlink":        {[]tarEntry{{name: "package/index.js", typ: tar.TypeSymlink, link: "/etc/passwd"}}, `has a link "package/index.js" (to "/etc/passwd"); links are refused`},
		"hard link":      {[]tarEntry{{name: "package/a", body: "a"}, {name: "package/b", typ: tar.TypeLink, link: "package/a"}}, "links are refused"},
		"device":         {[]tarEntry{{name: "package/dev", typ: tar.TypeChar}}, "is not a regular file"},
		"backslash":      {[]tarEntry{{name: `package\..\..\x`, body: "x"}}, "backslash"},
		"windows drive":  {[]tarEntry{{name: `C:/x`, body: "x"}}, "absolute path"},
		"not gzip":       {nil, "is not gzip-compressed"},
		"truncated file": {nil, "is corrupt"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			tgz := makeTarball(t, c.entries...)
			switch name {
			case "not gzip":
				tgz = []byte("<html>not found</html>")
			case "truncated file":
				tgz = truncatedTarball(t)
			}
			reg := newNpmRegistry(t)
			reg.add("evil", "1.0.0", npmVersion{tarball: tgz, integrity: "auto"}, "latest")
			_, err := (&Fetcher{}).Npm(context.Background(), reg.URL, "evil", "latest")
			wantErr(t, err, ErrInvalid, "npm: the tarball of evil@1.0.0", c.want)
		})
	}
}

// truncatedTarball is a gzip stream whose tar stops in the middle of a file.
func truncatedTarball(t *testing.T) []byte {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	tw.WriteHeader(&tar.Header{Name: "package/big.js", Typeflag: tar.TypeReg, Size: 4096, Mode: 0o644})
	tw.Write(make([]byte, 100))
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	gz.Write(tarBuf.Bytes())
	gz.Close()
	return buf.Bytes()
}

func TestNpmLimits(t *testing.T) {
	reg := newNpmRegistry(t)
	big := strings.Repeat("a", 100_000) // compresses to far less than it unpacks to
	reg.add("big", "1.0.0", npmVersion{tarball: makeTarball(t, tarEntry{name: "package/a.js", body: big}), integrity: "auto"}, "latest")
	_, err := (&Fetcher{MaxBytes: 50_000}).Npm(context.Background(), reg.URL, "big", "latest")
	wantErr(t, err, ErrTooLarge, "big@1.0.0", "is larger than the limit of 50000 bytes")

	pkg, err := (&Fetcher{MaxBytes: 200_000}).Npm(context.Background(), reg.URL, "big", "latest")
	if err != nil {
		t.Fatal(err)
	}
	if len(pkg.Files) != 1 || string(pkg.Files[0].Content) != big {
		t.Errorf("got %d files, want a.js of %d bytes", len(pkg.Files), len(big))
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = (&Fetcher{}).Npm(ctx, reg.URL, "big", "latest")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled fetch: got %v, want context.Canceled", err)
	}
}

func TestExtractTarballDetails(t *testing.T) {
	files, err := extractTarball(bytes.NewReader(makeTarball(t,
		tarEntry{name: "./package/a.js", body: "first"},
		tarEntry{name: "package/a.js", body: "second"}, // the last entry of a path wins
		tarEntry{name: "top-level.txt", body: "dropped, as npm drops it"},
		tarEntry{name: "package/x/../b.js", body: "b"},
		tarEntry{name: "pax_global_header", typ: tar.TypeXGlobalHeader},
	)), 1<<20, "t@1")
	if err != nil {
		t.Fatal(err)
	}
	wantFiles(t, files, map[string]string{"a.js": "second", "b.js": "b"})
}

func TestPackageMain(t *testing.T) {
	for _, c := range []struct {
		pkg   string
		files []string
		want  string
	}{
		{`{}`, []string{"index.js"}, "index.js"},
		{`{"main":"dist/edge.mjs"}`, []string{"dist/edge.mjs"}, "dist/edge.mjs"},
		{`{"main":"./lib"}`, []string{"lib/index.js"}, "lib/index.js"},
		{`{"main":"lib/main"}`, []string{"lib/main.js"}, "lib/main.js"},
		{`{"main":"../../etc/passwd"}`, nil, "index.js"},
		{`{"main":42}`, nil, "index.js"},
		{`not json`, nil, "index.js"},
		{`{"main":"missing.js"}`, nil, "missing.js"},
	} {
		files := []build.File{{Path: "package.json", Content: []byte(c.pkg)}}
		for _, p := range c.files {
			files = append(files, build.File{Path: p})
		}
		if got := packageMain(files); got != c.want {
			t.Errorf("main of %s with %v = %q, want %q", c.pkg, c.files, got, c.want)
		}
	}
}

// FuzzExtractTarball: whatever the bytes, extraction returns either an error of a known kind
// or files whose paths are clean, relative, inside the package and unique, within the bound.
func FuzzExtractTarball(f *testing.F) {
	f.Add(leftPad(f, "1.0.0"))
	f.Add(makeTarball(f, tarEntry{name: "package/../../x", body: "x"}))
	f.Add(makeTarball(f, tarEntry{name: "package/l", typ: tar.TypeSymlink, link: "../../x"}))
	f.Add(makeTarball(f, tarEntry{name: "package/a", body: "1"}, tarEntry{name: "package/./a", body: "2"}))
	f.Add([]byte{0x1f, 0x8b})
	const max = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte) {
		files, err := extractTarball(bytes.NewReader(data), max, "fuzz@1")
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error of unknown kind: %v", err)
			}
			return
		}
		seen := map[string]bool{}
		var total int
		for _, file := range files {
			p := file.Path
			if p == "" || path.IsAbs(p) || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") || strings.ContainsAny(p, "\\\x00") {
				t.Fatalf("unsafe path %q", p)
			}
			if seen[p] {
				t.Fatalf("path %q returned twice", p)
			}
			seen[p] = true
			total += len(file.Content)
		}
		if total > max {
			t.Fatalf("%d bytes returned, over the bound of %d", total, max)
		}
	})
}

// FuzzPackument: any registry document either fails to parse or resolves any version to one
// the document lists, with a tarball, or to an error of a known kind.
func FuzzPackument(f *testing.F) {
	f.Add([]byte(`{"dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"dist":{"tarball":"https://r/x.tgz","integrity":"sha512-AA=="}}}}`), "latest")
	f.Add([]byte(`{"dist-tags":{"latest":"2.0.0"},"versions":{"1.0.0":{"dist":{}}}}`), "1.0.0")
	f.Add([]byte(`{"versions":{"1.0.0":{"dist":"x"}}}`), "v1.0.0")
	f.Fuzz(func(t *testing.T, doc []byte, version string) {
		p, err := parsePackument(doc)
		if err != nil {
			return
		}
		exact, dist, err := p.resolve("fuzz", version)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrNotFound) {
				t.Fatalf("error of unknown kind: %v", err)
			}
			return
		}
		if _, ok := p.Versions[exact]; !ok || dist.Tarball == "" {
			t.Fatalf("resolved %q to %q (listed: %v) with tarball %q", version, exact, ok, dist.Tarball)
		}
		if _, err := newIntegrityCheck("fuzz@"+exact, dist.Integrity, dist.Shasum); err != nil && !errors.Is(err, ErrIntegrity) {
			t.Fatalf("integrity error of unknown kind: %v", err)
		}
	})
}
