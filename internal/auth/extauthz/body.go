package extauthz

import (
	"bytes"
	"io"
	"net/http"
)

// BufferBody reads the start of a request body for the check (includeBody): at most max
// bytes are kept. partial reports that the body is longer than max; the caller then answers
// 413, or (allowPartial) sends the first max bytes with Request.BodyPartial set. A body of
// exactly max bytes is sent whole (design case 92).
//
// rest yields the whole body again, buffered part first, for the upstream; closing it closes
// body. On a read error, err is returned with what was read in rest so far, and the caller
// should fail the request (the client's body is broken, not the service).
//
// buf shares memory with rest: do not modify it.
//
// Only max+1 bytes are read, never more, so a request whose body is not checked or is too
// large is not stalled reading it all.
func BufferBody(body io.ReadCloser, max int) (buf []byte, partial bool, rest io.ReadCloser, err error) {
	if body == nil || body == http.NoBody {
		return []byte{}, false, nopBody(body), nil
	}
	if max < 0 {
		max = 0
	}
	b := make([]byte, 0, min(max+1, 64<<10))
	w := bytes.NewBuffer(b)
	_, err = io.Copy(w, io.LimitReader(body, int64(max)+1))
	b = w.Bytes()
	rest = &replayBody{Reader: io.MultiReader(bytes.NewReader(b), body), closer: body}
	if err != nil {
		return nil, false, rest, err
	}
	if len(b) > max {
		return b[:max:max], true, rest, nil
	}
	return b, false, rest, nil
}

type replayBody struct {
	io.Reader
	closer io.Closer
}

func (r *replayBody) Close() error { return r.closer.Close() }

func nopBody(body io.ReadCloser) io.ReadCloser {
	if body == nil {
		return http.NoBody
	}
	return body
}
