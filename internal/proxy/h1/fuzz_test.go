package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
)

// FuzzReadRequest reads arbitrary bytes as a request head and body and compares with net/http's
// parser: whatever we accept, net/http accepts too and reads the same method, target, host,
// headers, length and body (we may refuse more: that is the stricter side of smuggling).
func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a/b?c=d&e HTTP/1.1\r\nHost: example.com:8080\r\nX: 1\r\nx: 2\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
		"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\n",
		"GET http://h.example/x%20y?q HTTP/1.1\r\nHost: other\r\n\r\n",
		"CONNECT h.example:443 HTTP/1.1\r\nHost: h.example:443\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"\r\nGET /%2F HTTP/1.1\nHost: a\n\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &conn{srv: &Server{}, lim: Limits{MaxHeaderBytes: 4096}.resolved(), br: bufio.NewReader(bytes.NewReader(data))}
		c.x = newScratch(c)
		r, perr := c.readRequest()
		if perr != nil {
			return
		}
		var ours []byte
		var ourErr error
		if r.Body != nil {
			ours, ourErr = io.ReadAll(r.Body)
		}
		std, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(bytes.TrimLeft(data, "\r\n"))))
		if err != nil {
			t.Fatalf("we accepted what net/http refuses (%v):\n%q", err, data)
		}
		if std.Method != r.Method || std.URL.String() != r.URL.String() || std.Host != r.Host || std.RequestURI != r.RequestURI || std.Close != r.Close {
			t.Fatalf("request differs from net/http's:\nours %s %s host %q close %v\nstd  %s %s host %q close %v\n%q",
				r.Method, r.URL, r.Host, r.Close, std.Method, std.URL, std.Host, std.Close, data)
		}
		for k, vv := range std.Header {
			if k == "Content-Length" && len(vv) > 1 {
				continue // net/http folds identical repeats
			}
			if got := r.Header[k]; len(got) != len(vv) || len(vv) > 0 && got[0] != vv[0] {
				t.Fatalf("header %s: ours %q, net/http %q\n%q", k, got, vv, data)
			}
		}
		if std.ContentLength != r.ContentLength {
			t.Fatalf("length: ours %d, net/http %d\n%q", r.ContentLength, std.ContentLength, data)
		}
		theirs, theirErr := io.ReadAll(std.Body)
		if ourErr == nil && (theirErr != nil || !bytes.Equal(ours, theirs)) {
			t.Fatalf("body: ours %q (%v), net/http %q (%v)\n%q", ours, ourErr, theirs, theirErr, data)
		}
	})
}
