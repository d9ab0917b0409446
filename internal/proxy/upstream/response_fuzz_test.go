package upstream

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
)

// FuzzReadResponse compares our response parser with http.ReadResponse: whatever we accept,
// net/http accepts with the same status, headers, length, body and trailers.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: 1\r\nx: 2\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: T\r\n\r\n5;a=b\r\nhello\r\n0\r\nT: v\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		req, _ := http.NewRequest("GET", "http://a/", nil)
		if head {
			req.Method = "HEAD"
		}
		pc := &h1Conn{br: bufio.NewReader(bytes.NewReader(data)), nc: nopConn{}}
		resp, err := readResponse(pc, req, nil)
		if err != nil {
			return
		}
		ours, ourErr := io.ReadAll(resp.Body)
		std, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(bytes.TrimLeft(data, "\r\n"))), req)
		if err != nil {
			t.Fatalf("we accepted what net/http refuses (%v):\n%q", err, data)
		}
		informational := resp.StatusCode < 200 // skipped by the client: only its status matters
		if std.StatusCode != resp.StatusCode || std.Status != resp.Status || !informational && (std.ContentLength != resp.ContentLength || std.Close != resp.Close) {
			t.Fatalf("ours %d %q len %d close %v; net/http %d %q len %d close %v\n%q", resp.StatusCode, resp.Status, resp.ContentLength, resp.Close,
				std.StatusCode, std.Status, std.ContentLength, std.Close, data)
		}
		for k, vv := range std.Header {
			if k == "Content-Length" {
				continue // net/http folds identical repeats
			}
			if got := resp.Header[k]; len(got) != len(vv) || len(vv) > 0 && got[0] != vv[0] {
				t.Fatalf("header %s: ours %q, net/http %q\n%q", k, got, vv, data)
			}
		}
		theirs, theirErr := io.ReadAll(std.Body)
		if ourErr == nil && (theirErr != nil || !bytes.Equal(ours, theirs)) {
			t.Fatalf("body: ours %q, net/http %q (%v)\n%q", ours, theirs, theirErr, data)
		}
		if ourErr == nil && theirErr == nil {
			for k, vv := range std.Trailer {
				if got := resp.Trailer[k]; len(vv) > 0 && (len(got) == 0 || got[0] != vv[0]) {
					t.Fatalf("trailer %s: ours %q, net/http %q\n%q", k, got, vv, data)
				}
			}
		}
	})
}

// nopConn stands in for the connection of a parsed response (only closed).
type nopConn struct{ net.Conn }

func (nopConn) Close() error { return nil }
