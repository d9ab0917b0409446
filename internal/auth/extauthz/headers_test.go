package extauthz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"testing"
)

func TestProtected(t *testing.T) {
	for _, name := range []string{":path", ":authority", ":method", ":scheme", ":status", "Host", "host", "HOST",
		"Content-Length", "Transfer-Encoding", "trailer", "Connection", "keep-alive", "TE", "Upgrade",
		"Proxy-Authorization", "proxy-connection", "PROXY-Authenticate", "Proxy-"} {
		if !Protected(name) {
			t.Errorf("Protected(%q) = false", name)
		}
	}
	for _, name := range []string{"X-User-Id", "Authorization", "Cookie", "Set-Cookie", "Location", "Hostname",
		"X-Host", "Proxy", "Tee", "Content-Type", "Expect", "Www-Authenticate"} {
		if Protected(name) {
			t.Errorf("Protected(%q) = true", name)
		}
	}
}

func TestHeaderFilter(t *testing.T) {
	var zero HeaderFilter
	if !zero.All() || !zero.Allows("anything") || !NewHeaderFilter(nil).All() || !NewHeaderFilter([]string{}).All() {
		t.Error("an empty filter must allow all")
	}
	f := NewHeaderFilter([]string{"x-user-id", " Authorization ", "X-TENANT"})
	if f.All() {
		t.Error("a list allows all")
	}
	for name, want := range map[string]bool{
		"X-User-Id": true, "x-user-id": true, "X-USER-ID": true, "Authorization": true, "authorization": true,
		"X-Tenant": true, "Cookie": false, "X-User": false, "": false,
	} {
		if got := f.Allows(name); got != want {
			t.Errorf("Allows(%q) = %v", name, got)
		}
	}
	h := http.Header{"X-User-Id": {"a", "b"}, "Cookie": {"c"}, "authorization": {"non-canonical key"}}
	got := f.Filter(h)
	if want := (http.Header{"X-User-Id": {"a", "b"}, "authorization": {"non-canonical key"}}); !reflect.DeepEqual(got, want) {
		t.Errorf("Filter = %v, want %v", got, want)
	}
	got["X-User-Id"][0] = "changed"
	if h["X-User-Id"][0] != "a" {
		t.Error("Filter shares value slices with its input")
	}
	if all := FilterHeaders(h, nil); !reflect.DeepEqual(all, h) {
		t.Errorf("FilterHeaders(nil) = %v, want everything", all)
	}
}

func TestApplyMutations(t *testing.T) {
	h := http.Header{"A": {"1"}, "B": {"1"}, "C": {"1"}}
	ApplyMutations(h, []HeaderMutation{
		{"A", "2", AppendOrAdd},
		{"New", "x", AppendOrAdd},
		{"B", "2", AddIfAbsent},
		{"Absent", "y", AddIfAbsent},
		{"C", "2", OverwriteOrAdd},
		{"Over", "z", OverwriteOrAdd},
		{"C", "3", OverwriteIfExists},
		{"Missing", "w", OverwriteIfExists},
		{"A", "9", Action(99)},
	})
	want := http.Header{"A": {"1", "2"}, "New": {"x"}, "B": {"1"}, "Absent": {"y"}, "C": {"3"}, "Over": {"z"}}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("got %v\nwant %v", h, want)
	}
	for a, s := range map[Action]string{AppendOrAdd: "APPEND_IF_EXISTS_OR_ADD", AddIfAbsent: "ADD_IF_ABSENT",
		OverwriteOrAdd: "OVERWRITE_IF_EXISTS_OR_ADD", OverwriteIfExists: "OVERWRITE_IF_EXISTS", Action(7): "UNKNOWN"} {
		if a.String() != s {
			t.Errorf("%d.String() = %q", int(a), a.String())
		}
	}
}

func TestOutcomeOf(t *testing.T) {
	for _, tc := range []struct {
		d    *Decision
		err  error
		want Outcome
	}{
		{&Decision{Allowed: true}, nil, OutcomeAllowed},
		{&Decision{Status: 403}, nil, OutcomeDenied},
		{nil, &Error{Outcome: OutcomeTimeout}, OutcomeTimeout},
		{nil, fmt.Errorf("wrapped: %w", &Error{Outcome: OutcomeProtocolError}), OutcomeProtocolError},
		{nil, context.DeadlineExceeded, OutcomeTimeout},
		{nil, context.Canceled, OutcomeCanceled},
		{nil, errors.New("other"), OutcomeUnavailable},
	} {
		if got := OutcomeOf(tc.d, tc.err); got != tc.want {
			t.Errorf("OutcomeOf(%+v, %v) = %s, want %s", tc.d, tc.err, got, tc.want)
		}
	}
	e := &Error{Outcome: OutcomeUnavailable, Err: io.EOF}
	if e.Error() != "extauthz: unavailable: EOF" || !errors.Is(e, io.EOF) || (&Error{Outcome: OutcomeTimeout}).Error() != "extauthz: timeout" {
		t.Errorf("Error() = %q", e.Error())
	}
}

type closeCounter struct {
	io.Reader
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }

func TestBufferBody(t *testing.T) {
	buf, partial, rest, err := BufferBody(nil, 10)
	if err != nil || partial || buf == nil || len(buf) != 0 || rest != http.NoBody {
		t.Errorf("nil body: %q %v %v %v", buf, partial, rest, err)
	}
	buf, partial, _, err = BufferBody(http.NoBody, 10)
	if err != nil || partial || len(buf) != 0 {
		t.Errorf("NoBody: %q %v %v", buf, partial, err)
	}

	body := &closeCounter{Reader: bytes.NewReader([]byte("0123456789abc"))}
	buf, partial, rest, err = BufferBody(body, 0)
	if err != nil || !partial || len(buf) != 0 {
		t.Errorf("max 0: %q %v %v", buf, partial, err)
	}
	all, _ := io.ReadAll(rest)
	rest.Close()
	if string(all) != "0123456789abc" || body.closed != 1 {
		t.Errorf("replay %q, closed %d", all, body.closed)
	}

	// Only max+1 bytes are read before the check.
	src := bytes.NewReader(bytes.Repeat([]byte("z"), 1000))
	if _, _, _, err := BufferBody(io.NopCloser(src), 100); err != nil || src.Len() != 1000-101 {
		t.Errorf("read %d bytes, want 101 (err %v)", 1000-src.Len(), err)
	}

	boom := errors.New("client reset")
	_, _, rest, err = BufferBody(io.NopCloser(io.MultiReader(bytes.NewReader([]byte("ab")), &errReader{boom})), 10)
	if !errors.Is(err, boom) || rest == nil {
		t.Errorf("read error: %v", err)
	}
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }
