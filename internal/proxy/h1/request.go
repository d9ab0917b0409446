package h1

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"

	"apoxy.dev/apoxy/internal/proxy/wire"
)

// readHead reads the request line and header block into c.x.head.
func (c *conn) readHead() *requestError {
	limit := c.lim.MaxHeaderBytes
	var err error
	c.x.head, err = wire.ReadHead(c.br, c.x.head[:0], limit)
	switch {
	case err == wire.ErrHeadTooLarge:
		if bytes.IndexByte(c.x.head, '\n') < 0 {
			// The request line alone is too long: its target is.
			return &requestError{code: http.StatusRequestURITooLong, msg: "the request line is longer than " + strconv.Itoa(limit) + " bytes", reason: RejectURITooLong}
		}
		return &requestError{code: http.StatusRequestHeaderFieldsTooLarge, msg: "the request head is larger than " + strconv.Itoa(limit) + " bytes", reason: RejectHeaderTooLarge}
	case err != nil:
		return &requestError{} // closed or timed out: nothing to answer
	}
	return nil
}

// readRequest reads and checks the next request head and prepares c.x.req for it.
func (c *conn) readRequest() (*http.Request, *requestError) {
	if err := c.readHead(); err != nil {
		return nil, err
	}
	head := string(c.x.head) // every string of the request is cut from this one allocation
	line, rest := wire.StartLine(head)
	method, target, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(target, " ")
	if !ok1 || !ok2 {
		return nil, badRequest("malformed request line " + strconv.Quote(line))
	}
	if line == h2PrefaceLine {
		return nil, &requestError{code: http.StatusHTTPVersionNotSupported, msg: "HTTP/2 needs TLS with ALPN h2 here", reason: RejectVersion, h2: true}
	}
	major, minor, ok := parseVersion(proto)
	if !ok {
		e := badRequest("malformed HTTP version " + strconv.Quote(proto))
		e.silent = !strings.Contains(line, "HTTP/")
		return nil, e
	}
	if major != 1 {
		return nil, &requestError{code: http.StatusHTTPVersionNotSupported, msg: "unsupported protocol version " + strconv.Quote(proto), reason: RejectVersion}
	}
	if !validMethod(method) {
		return nil, badRequest("invalid method " + strconv.Quote(method))
	}
	maxURL := c.lim.MaxURLBytes
	if len(target) > maxURL {
		return nil, &requestError{code: http.StatusRequestURITooLong, msg: "the request target is longer than " + strconv.Itoa(maxURL) + " bytes", reason: RejectURITooLong}
	}
	// Every field is one line; the block ends with an empty one.
	lines := strings.Count(rest, "\n")
	maxHeaders := c.lim.MaxHeaders
	if lines-1 > maxHeaders {
		return nil, &requestError{code: http.StatusRequestHeaderFieldsTooLarge, msg: "more than " + strconv.Itoa(maxHeaders) + " header fields", reason: RejectTooManyHeaders}
	}

	h := c.x.header
	clear(h)
	var (
		hosts, contentLength, transferEncoding, connection, expect string
		nHost, nTE, nCL                                            int
	)
	values := make(wire.Values, 0, lines) // sized like wire.NewValues, without counting again
	for f := (wire.Fields{Block: rest}); ; {
		if !f.Next() {
			if f.Err != nil {
				return nil, badRequest(f.Err.Error())
			}
			break
		}
		key, value := f.Key, f.Value
		switch key {
		case "Host":
			nHost++
			hosts = value
			continue // net/http keeps Host in Request.Host only
		case "Content-Length":
			if nCL++; nCL > 1 && contentLength != value {
				return nil, badRequest("conflicting Content-Length headers")
			}
			contentLength = value
		case "Transfer-Encoding":
			nTE++
			transferEncoding = value
		case "Connection":
			if connection != "" {
				connection += ","
			}
			connection += value
		case "Expect":
			expect = value
		}
		values.Add(h, key, value)
	}

	r := &c.x.req
	r.Method = method
	r.Proto = proto
	r.ProtoMajor, r.ProtoMinor = major, minor
	r.Header = h
	r.RequestURI = target
	r.RemoteAddr = c.x.remote
	r.TLS = c.tls
	r.Trailer, r.TransferEncoding, r.Form, r.PostForm, r.MultipartForm, r.GetBody = nil, nil, nil, nil, nil, nil
	r.Pattern, r.Response, r.Cancel = "", nil, nil
	if err := c.parseTarget(method, target); err != nil {
		return nil, err
	}
	r.URL = &c.x.url

	// Host: required once on HTTP/1.1; the absolute form's authority wins.
	if nHost > 1 {
		return nil, badRequest("too many Host headers")
	}
	if nHost == 0 && minor >= 1 {
		return nil, badRequest("missing required Host header")
	}
	if !httpguts.ValidHostHeader(hosts) {
		return nil, badRequest("malformed Host header")
	}
	r.Host = hosts
	if c.x.url.Host != "" {
		r.Host = c.x.url.Host
	}

	// Persistence.
	r.Close = minor == 0
	if connection != "" {
		if wire.HasToken(connection, "close") {
			r.Close = true
		} else if minor == 0 && wire.HasToken(connection, "keep-alive") {
			r.Close = false
		}
	}

	// Body framing (RFC 9112 §6). A request with both Transfer-Encoding and Content-Length is
	// a smuggling vector through proxies: rejected rather than guessed.
	r.Body, r.ContentLength = http.NoBody, 0
	switch {
	case nTE > 0:
		if nCL > 0 {
			return nil, badRequest("both Transfer-Encoding and Content-Length")
		}
		if minor == 0 {
			return nil, badRequest("Transfer-Encoding in an HTTP/1.0 request") // RFC 9112 §6.1: faulty framing
		}
		if nTE > 1 || !strings.EqualFold(strings.TrimSpace(transferEncoding), "chunked") {
			return nil, &requestError{code: http.StatusNotImplemented, msg: "unsupported transfer encoding " + strconv.Quote(transferEncoding), reason: RejectTransferEncoding}
		}
		r.TransferEncoding = []string{"chunked"}
		r.ContentLength = -1
		b := &body{c: c, chunked: true}
		b.cr.Reset(c.br)
		r.Body = b
	case nCL > 0:
		n, ok := wire.ParseContentLength(contentLength)
		if !ok {
			return nil, badRequest("bad Content-Length " + strconv.Quote(contentLength))
		}
		r.ContentLength = n
		if n > 0 {
			r.Body = &body{c: c, remaining: n}
		}
	}
	if expect != "" {
		if !strings.EqualFold(expect, "100-continue") {
			return nil, &requestError{code: http.StatusExpectationFailed, msg: "unsupported Expect " + strconv.Quote(expect), reason: RejectExpect}
		}
		if b, ok := r.Body.(*body); ok && minor >= 1 {
			b.expectContinue = true
		}
	}
	return r, nil
}

// parseTarget fills c.x.url from the request target: origin form without escapes without a
// copy, anything else through url.ParseRequestURI (as net/http).
func (c *conn) parseTarget(method, target string) *requestError {
	if target == "" {
		return badRequest("empty request target")
	}
	if target[0] == '/' && simpleTarget(target) {
		path, query, hasQuery := strings.Cut(target, "?")
		c.x.url = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
		return nil
	}
	raw := target
	if method == http.MethodConnect && target[0] != '/' {
		raw = "http://" + target // authority form
	}
	u, err := url.ParseRequestURI(raw)
	if err != nil {
		return badRequest("invalid request target " + strconv.Quote(truncate(target)))
	}
	if raw != target {
		u.Scheme = ""
	}
	c.x.url = *u
	return nil
}

// simpleTarget reports whether an origin-form target is one url.ParseRequestURI would take as
// it is: a path of characters its escaping leaves alone (so Path needs no RawPath), and a query
// of visible ASCII; no '%' escapes and no '#'.
func simpleTarget(s string) bool {
	i := 0
	for ; i < len(s) && s[i] != '?'; i++ {
		if !plainPathByte[s[i]] {
			return false
		}
	}
	for ; i < len(s); i++ {
		if b := s[i]; b <= ' ' || b >= 0x7f || b == '#' {
			return false
		}
	}
	return true
}

// plainPathByte marks the bytes url.URL keeps unescaped in a path.
var plainPathByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-_.~$&+,/:;=@" {
		t[c] = true
	}
	return t
}()

func parseVersion(v string) (major, minor int, ok bool) {
	switch v {
	case "HTTP/1.1":
		return 1, 1, true
	case "HTTP/1.0":
		return 1, 0, true
	}
	return http.ParseHTTPVersion(v)
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		if !httpguts.IsTokenRune(rune(m[i])) {
			return false
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
