//go:build wasip1

package edgefunc

import (
	"strings"
	"time"
)

// Header is a set of HTTP headers, name to values. The gateway hands names over in
// canonical form ("Content-Type").
type Header map[string][]string

// Get is the first value of name, matched without regard to case ("" when absent).
func (h Header) Get(name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	for k, v := range h {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// FetchResponse is an outbound response, read whole.
type FetchResponse struct {
	Status int
	Header Header
	Body   []byte
}

// Fetch makes an outbound HTTP request through the gateway, blocking until the whole
// response is read. It fails with ErrNotEnabled when the revision may not fetch and
// ErrLimit past the revision's fetch count or bytes.
func Fetch(method, url string, header Header, body []byte) (*FetchResponse, error) {
	mp, ml := sptr(method)
	up, ul := sptr(url)
	hb := encodeHeaders(header)
	h := fetch(mp, ml, up, ul, ptr(hb), uint32(len(hb)), ptr(body), uint32(len(body)))
	if h < 0 {
		return nil, codeError(int64(h))
	}
	defer fetchClose(h)
	resp := &FetchResponse{Status: int(fetchStatus(h)), Header: Header{}}
	list := getList(func(buf, limit uint32) uint64 { return uint64(fetchHeaders(h, buf, limit)) })
	for i := 0; i+1 < len(list); i += 2 {
		resp.Header[list[i]] = append(resp.Header[list[i]], list[i+1])
	}
	for {
		r := fetchReadBody(h, ptr(scratch), uint32(len(scratch)))
		if r < 0 {
			return nil, codeError(r)
		}
		resp.Body = append(resp.Body, scratch[:uint32(r)]...)
		if r>>32 == 1 {
			return resp, nil
		}
	}
}

// KVGet reads key from the function's key-value store; ok is false when it is absent.
func KVGet(key string) (value []byte, ok bool, err error) {
	kp, kl := sptr(key)
	for {
		n := kvGet(kp, kl, ptr(scratch), uint32(len(scratch)))
		switch {
		case n == -2:
			return nil, false, nil
		case n < 0:
			return nil, false, codeError(n)
		case int(n) > len(scratch):
			grow(uint32(n))
			continue
		}
		return append([]byte{}, scratch[:n]...), true, nil
	}
}

// KVPut stores value under key, expiring after ttl (0: never).
func KVPut(key string, value []byte, ttl time.Duration) error {
	kp, kl := sptr(key)
	if c := kvPut(kp, kl, ptr(value), uint32(len(value)), ttl.Milliseconds()); c < 0 {
		return codeError(int64(c))
	}
	return nil
}

// KVDelete removes key from the function's key-value store.
func KVDelete(key string) error {
	kp, kl := sptr(key)
	if c := kvDelete(kp, kl); c < 0 {
		return codeError(int64(c))
	}
	return nil
}
