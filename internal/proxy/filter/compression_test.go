package filter

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"apoxy.dev/apoxy/internal/ir"
)

func gzipRoute(min int) ir.Filter {
	return ir.Filter{Type: ir.FilterCompression, Compression: &ir.Compression{Algorithms: []string{"gzip"}, MinContentLength: min}}
}

// answerBig plays an upstream answering a compressible body of n bytes.
func answerBig(t *testing.T, c Chain, rt *ir.Route, accept string, n int) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Accept-Encoding", accept)
	x, rec := exchange(r, rt)
	if c.Run(x) {
		t.Fatal("compression answered")
	}
	x.W.Header().Set("Content-Type", "application/json")
	x.W.WriteHeader(200)
	x.W.Write([]byte(strings.Repeat("a", n)))
	x.Finish()
	return rec
}

func TestCompression(t *testing.T) {
	rt := prefixRoute("/", gzipRoute(64))
	c, _ := Compile(rt, nil)
	rec := answerBig(t, c, rt, "br, gzip", 4096)
	if rec.Header().Get("Content-Encoding") != "gzip" || rec.Header().Get("Vary") != "Accept-Encoding" {
		t.Fatalf("head %v", rec.Header())
	}
	zr, err := gzip.NewReader(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(zr); len(b) != 4096 {
		t.Errorf("decoded %d bytes", len(b))
	}
	// Under the minimum, or not accepted: plain.
	if rec := answerBig(t, c, rt, "gzip", 10); rec.Header().Get("Content-Encoding") != "" || rec.Body.Len() != 10 {
		t.Errorf("small body: %v %d", rec.Header(), rec.Body.Len())
	}
	if rec := answerBig(t, c, rt, "br", 4096); rec.Header().Get("Content-Encoding") != "" {
		t.Errorf("not accepted: %v", rec.Header())
	}
}

// A backendRef's compression filter replaces the route's settings rather than encoding twice.
func TestBackendCompressionReplacesTheRoutes(t *testing.T) {
	rt := prefixRoute("/", gzipRoute(64))
	rt.Backends = []ir.WeightedBackend{{Backend: "b", Weight: 1, Filters: []ir.Filter{{Type: ir.FilterCompression, Compression: &ir.Compression{Disabled: true}}}}}
	c, _ := Compile(rt, nil)
	bc, err := CompileBackend(rt, &rt.Backends[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec := answerBig(t, append(c, bc...), rt, "gzip", 4096); rec.Header().Get("Content-Encoding") != "" || rec.Body.Len() != 4096 {
		t.Errorf("disabled for the backend, yet %v %d", rec.Header(), rec.Body.Len())
	}
}

// Response hooks see the upstream's head before compression judges it.
func TestResponseHooksRunBeforeCompression(t *testing.T) {
	rt := prefixRoute("/", ir.Filter{Type: ir.FilterResponseHeaders, ResponseHeaders: &ir.HeaderModifier{Set: []ir.HeaderPair{{Name: "Cache-Control", Value: "no-transform"}}}}, gzipRoute(64))
	c, _ := Compile(rt, nil)
	if rec := answerBig(t, c, rt, "gzip", 4096); rec.Header().Get("Content-Encoding") != "" || rec.Header().Get("Cache-Control") != "no-transform" {
		t.Errorf("no-transform set by a filter was not honoured: %v", rec.Header())
	}
}
