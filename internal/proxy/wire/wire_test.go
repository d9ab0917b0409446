package wire

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestValuesAddKeepsNeighbours: values share one backing array, so appending to one key must
// not overwrite the next key's value.
func TestValuesAddKeepsNeighbours(t *testing.T) {
	h := http.Header{}
	v := NewValues("a\nb\nc\n")
	v.Add(h, "A", "1")
	v.Add(h, "B", "2")
	h["A"] = append(h["A"], "x") // a handler adding a value
	v.Add(h, "A", "3")
	if got := strings.Join(h["A"], ","); got != "1,x,3" || h.Get("B") != "2" {
		t.Fatalf("A=%q B=%q", got, h.Get("B"))
	}
}

// slowReader hands out its data in pieces, failing with a deadline error between them.
type slowReader struct {
	parts []string
	timed bool
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.parts) == 0 {
		return 0, io.EOF
	}
	if r.timed = !r.timed; r.timed {
		return 0, os.ErrDeadlineExceeded
	}
	n := copy(p, r.parts[0])
	r.parts = r.parts[1:]
	return n, nil
}

// TestReadHeadResumes: a head interrupted by read deadlines (in the middle of a line, or
// between lines) is completed by calling ReadHead again with what it returned.
func TestReadHeadResumes(t *testing.T) {
	r := &slowReader{parts: []string{"\r\nHTTP/1.1 200 OK\r\nContent-Le", "ngth: 2\r\n", "\r\nhi"}}
	br := bufio.NewReader(r)
	var buf []byte
	var err error
	for range 10 {
		buf, err = ReadHead(br, buf, 1<<10)
		if err != os.ErrDeadlineExceeded {
			break
		}
	}
	if err != nil || string(buf) != "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n" {
		t.Fatalf("%q, %v", buf, err)
	}
	if _, err := ReadHead(bufio.NewReader(strings.NewReader("GET / HTTP/1.1\r\nX: "+strings.Repeat("y", 2000)+"\r\n\r\n")), nil, 1024); err != ErrHeadTooLarge {
		t.Fatalf("over the limit: %v", err)
	}
}

func TestFieldsRejectsWhatHopsMayReadDifferently(t *testing.T) {
	for _, block := range []string{"X : 1\r\n", " X: 1\r\n", "X: 1\r\n 2\r\n", "X: a\x00b\r\n", "X\r\n", ": v\r\n"} {
		f := Fields{Block: block}
		for f.Next() {
		}
		if f.Err == nil {
			t.Errorf("%q accepted", block)
		}
	}
	f := Fields{Block: "content-type:  text/plain \r\nX-A:\r\n\r\nignored: after the end\r\n"}
	var got []string
	for f.Next() {
		got = append(got, f.Key+"="+f.Value)
	}
	if f.Err != nil || strings.Join(got, "|") != "Content-Type=text/plain|X-A=" {
		t.Fatalf("%q, %v", got, f.Err)
	}
}

func TestChunkedReader(t *testing.T) {
	var trailers []string
	cr := ChunkedReader{R: bufio.NewReader(strings.NewReader("3;x=y\r\nabc\r\nA\r\n0123456789\r\n0\r\nT: v\r\n\r\nnext")),
		OnTrailer: func(k, v string) { trailers = append(trailers, k+"="+v) }}
	b, err := io.ReadAll(&cr)
	if err != nil || string(b) != "abc0123456789" || strings.Join(trailers, ",") != "T=v" || !cr.EOF() {
		t.Fatalf("%q %v %v", b, err, trailers)
	}
	rest, _ := io.ReadAll(cr.R)
	if string(rest) != "next" {
		t.Fatalf("read past the body: rest %q", rest)
	}
	for _, bad := range []string{"3\nabc\r\n0\r\n\r\n", "3\r\nabcX\r\n0\r\n\r\n", "zz\r\n", "1 x\r\na\r\n", "10000000000000000\r\n", "0\r\nbad trailer\r\n\r\n"} {
		cr := ChunkedReader{R: bufio.NewReader(strings.NewReader(bad))}
		if _, err := io.ReadAll(&cr); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
