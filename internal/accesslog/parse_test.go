package accesslog

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestParseErrors: a format that cannot be compiled names the offending token and its byte
// offset (and, in JSON, the field's key).
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		format string
		want   string // the error, or its start when it ends in "..." (the list of known operators)
		offset int
	}{
		{"abcdefghijkl%REQ_HEADERS%", `accesslog: format: unknown operator "%REQ_HEADERS%" at 12 (known: START_TIME, REQ, REQUEST_HEADER, RESP, ...`, 12},
		{"%req(:method)%", `accesslog: format: unknown operator "%req(:method)%" at 0 (known: ...`, 0},
		{"x %UPSTREAM_LOCAL_ADDRESS%", `accesslog: format: operator "%UPSTREAM_LOCAL_ADDRESS%" at 2 is Envoy's, but the gateway has nothing to fill it with (known: ...`, 2},
		{"%GRPC_STATUS(NUMBER)%", `accesslog: format: operator "%GRPC_STATUS(NUMBER)%" at 0 is Envoy's, but the gateway has nothing to fill it with (known: ...`, 0},
		{"abcde%REQ(A", `accesslog: format: unterminated operator starting at 5`, 5},
		{"abcde%REQ", `accesslog: format: unterminated operator starting at 5`, 5},
		{"%REQ(A):12", `accesslog: format: unterminated operator starting at 0`, 0},
		{"50%", `accesslog: format: unterminated operator starting at 2 (write %% for a literal percent)`, 2},
		{"100% done", `accesslog: format: "% " at 3 starts no operator (write %% for a literal percent)`, 3},
		{"%DURATION-", `accesslog: format: "%DURATION-" at 0: expected "%" or "(" after the operator's name`, 0},
		{"%REQ()%", `accesslog: format: "%REQ()%" at 0: header name required`, 0},
		{"%REQ(A):x%", `accesslog: format: "%REQ(A):x%" at 0: max length must be a positive integer`, 0},
		{"%REQ(A):0%", `accesslog: format: "%REQ(A):0%" at 0: max length must be a positive integer`, 0},
		{"%REQ(A):-1%", `accesslog: format: "%REQ(A):-1%" at 0: max length must be a positive integer`, 0},
		{"%REQ(A):+1%", `accesslog: format: "%REQ(A):+1%" at 0: max length must be a positive integer`, 0},
		{"%REQ(A):99999999999999999999%", `accesslog: format: "%REQ(A):99999999999999999999%" at 0: max length must be a positive integer`, 0},
		{"%REQ(A?)%", `accesslog: format: "%REQ(A?)%" at 0: fallback header name required after "?"`, 0},
		{"%REQ(A?B?C)%", `accesslog: format: "%REQ(A?B?C)%" at 0: at most one fallback header (X?Y)`, 0},
		{"%REQ(A B)%", `accesslog: format: "%REQ(A B)%" at 0: invalid header name "A B"`, 0},
		{"%REQ(:foo)%", `accesslog: format: "%REQ(:foo)%" at 0: unknown pseudo-header ":foo" (known: :method, :path, :authority, :scheme, :protocol)`, 0},
		{"%RESP(:path)%", `accesslog: format: "%RESP(:path)%" at 0: unknown pseudo-header ":path" (known: :status)`, 0},
		{"%TRAILER(:status)%", `accesslog: format: "%TRAILER(:status)%" at 0: trailers have no pseudo-header ":status"`, 0},
		{"%REQ%", `accesslog: format: "%REQ%" at 0: REQ needs an argument: %REQ(...)%`, 0},
		{"%DYNAMIC_METADATA%", `accesslog: format: "%DYNAMIC_METADATA%" at 0: DYNAMIC_METADATA needs an argument: %DYNAMIC_METADATA(...)%`, 0},
		{"%DURATION(x)%", `accesslog: format: "%DURATION(x)%" at 0: DURATION takes no argument`, 0},
		{"%PROTOCOL():5%", `accesslog: format: "%PROTOCOL():5%" at 0: PROTOCOL takes no argument`, 0},
		{"%START_TIME():5%", `accesslog: format: "%START_TIME():5%" at 0: START_TIME takes no max length`, 0},
		{"ab%START_TIME(%Y-%Q)%", `accesslog: format: "%START_TIME(%Y-%Q)%" at 2: unknown time specifier "%Q" (supported: ...`, 17},
		{"%START_TIME(%4)%", `accesslog: format: "%START_TIME(%4)%" at 0: unknown time specifier "%4" (a digit must be followed by f: %3f)`, 12},
		{"%START_TIME(%E*S)%", `accesslog: format: "%START_TIME(%E*S)%" at 0: unknown time specifier "%E*S" (supported: %E0S to %E9S)`, 12},
		{"%START_TIME(%Y%)%", `accesslog: format: "%START_TIME(%Y%)%" at 0: time format ends in a lone %`, 14},
		{"%START_TIME(%Y\t%n)%", `accesslog: format: "%START_TIME(%Y\t%n)%" at 0: unknown time specifier "%n" (supported: ...`, 15},
		{"%START_TIME(\x01)%", `accesslog: format: "%START_TIME(\x01)%" at 0: control character '\x01' in the time format`, 12},
		{"%RESPONSE_CODE_DETAILS(X)%", `accesslog: format: "%RESPONSE_CODE_DETAILS(X)%" at 0: the argument may only be ALLOW_WHITESPACES`, 0},
		{"%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT(129)%", `accesslog: format: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT(129)%" at 0: the mask prefix length must be an integer from 0 to 128`, 0},
		{"%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT(x)%", `accesslog: format: "%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT(x)%" at 0: the mask prefix length must be an integer from 0 to 128`, 0},
		{"%DYNAMIC_METADATA()%", `accesslog: format: "%DYNAMIC_METADATA()%" at 0: metadata namespace required`, 0},
		{"%DYNAMIC_METADATA(a:)%", `accesslog: format: "%DYNAMIC_METADATA(a:)%" at 0: metadata key required after ":"`, 0},
		{"%DYNAMIC_METADATA(a:b:c)%", `accesslog: format: "%DYNAMIC_METADATA(a:b:c)%" at 0: nested metadata keys cannot match: the gateway's metadata values are strings (use NAMESPACE or NAMESPACE:KEY)`, 0},
		{"%PATH(XQ)%", `accesslog: format: "%PATH(XQ)%" at 0: the first argument must be WQ or NQ`, 0},
		{"%PATH(NQ:FOO)%", `accesslog: format: "%PATH(NQ:FOO)%" at 0: the second argument must be ORIG, PATH or ORIG_OR_PATH`, 0},
		{"a\nb", `accesslog: format: a line break at 1 would split the line: only a trailing newline is allowed`, 1},
		{"a\rb\n", `accesslog: format: a line break at 1 would split the line: only a trailing newline is allowed`, 1},
	} {
		_, err := ParseText(tc.format)
		if err == nil {
			t.Errorf("ParseText(%q) compiled", tc.format)
			continue
		}
		got := err.Error()
		if want, prefix := strings.CutSuffix(tc.want, "..."); prefix && !strings.HasPrefix(got, want) || !prefix && got != want {
			t.Errorf("ParseText(%q):\n got %s\nwant %s", tc.format, got, tc.want)
		}
		var e *Error
		if !errors.As(err, &e) || e.Offset != tc.offset || e.JSON {
			t.Errorf("ParseText(%q): %#v, want offset %d", tc.format, e, tc.offset)
		}
	}
}

// TestParseJSONErrors: a JSON field's error names its key; keys are unique.
func TestParseJSONErrors(t *testing.T) {
	for _, tc := range []struct {
		fields []JSONField
		want   string
	}{
		{[]JSONField{{Key: "ok", Format: "%DURATION%"}, {Key: "status", Format: "x %RESPONSE_CODES%"}}, `accesslog: json["status"]: unknown operator "%RESPONSE_CODES%" at 2 (known: `},
		{[]JSONField{{Key: "a", Format: "%REQ()%"}}, `accesslog: json["a"]: "%REQ()%" at 0: header name required`},
		{[]JSONField{{Key: "a"}, {Key: "a"}}, `accesslog: json["a"]: duplicate key`},
		{[]JSONField{{Key: "a\"", Format: "%%%"}}, `accesslog: json["a\""]: unterminated operator starting at 2 (write %% for a literal percent)`},
		{[]JSONField{{Key: "a", Empty: 7}}, `accesslog: json["a"]: unknown Empty value 7`},
	} {
		_, err := ParseJSON(tc.fields, JSONOptions{})
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("ParseJSON(%v): %v, want %s", tc.fields, err, tc.want)
		}
	}
	// A line break in a JSON value is only text: escaped.
	f, err := ParseJSON([]JSONField{{Key: "k\n", Format: "a\nb"}}, JSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(f.Append(nil, &Record{})); got != `{"k\n":"a\nb"}`+"\n" {
		t.Errorf("got %q", got)
	}
}

// TestTextNewline: every text line ends in exactly one newline, whether the format has none,
// one or several.
func TestTextNewline(t *testing.T) {
	r := &Record{Protocol: "HTTP/1.1"}
	for _, format := range []string{"%PROTOCOL%", "%PROTOCOL%\n", "%PROTOCOL%\n\n\n", "%PROTOCOL%\r\n"} {
		f, err := ParseText(format)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(f.Append(nil, r)); got != "HTTP/1.1\n" {
			t.Errorf("%q: %q", format, got)
		}
	}
}

// TestTextEscaping: a value never breaks a text line: control characters are escaped, other
// bytes (quotes, invalid UTF-8, Unicode) are written as they are, as Envoy does.
func TestTextEscaping(t *testing.T) {
	f, err := ParseText(`"%REQ(A)%" %REQ(B)% %ERROR%`)
	if err != nil {
		t.Fatal(err)
	}
	r := &Record{ReqHeader: http.Header{"A": {"x\ny\r\tz\x00\x1f\x7f"}, "B": {"é\xff\"日"}}, Error: "line1\nline2"}
	if got, want := string(f.Append(nil, r)), `"x\ny\r\tz\x00\x1f\x7f" é`+"\xff"+`"日 line1\nline2`+"\n"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestJSONEscaping: whatever a value holds, the line is valid JSON that decodes to the value
// (control characters escaped, HTML characters escaped, invalid UTF-8 replaced).
func TestJSONEscaping(t *testing.T) {
	f, err := ParseJSON([]JSONField{
		{Key: "h", Format: "%REQ(A)%"},
		{Key: "mixed", Format: "<%REQ(A)%>"},
		{Key: "meta", Format: "%DYNAMIC_METADATA(ns)%"},
		{Key: "metastr", Format: "m=%DYNAMIC_METADATA(ns)%"},
		{Key: "ké\u2028", Format: "%ERROR%"},
	}, JSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v := "q\"b\\s\n\t\x01<&>\u2028é\xff日"
	r := &Record{ReqHeader: http.Header{"A": {v}}, Metadata: []Metadata{{"ns", "k\"", v}}, Error: v}
	got := string(f.Append(nil, r))
	esc := `q\"b\\s\n\t\u0001\u003c\u0026\u003e\u2028é\ufffd日`
	want := `{"h":"` + esc + `","mixed":"\u003c` + esc + `\u003e","meta":{"k\"":"` + esc + `"},` +
		`"metastr":"m={\"k\\\"\":\"` + strings.ReplaceAll(strings.ReplaceAll(esc, `\`, `\\`), `"`, `\"`) + `\"}","k\u00e9\u2028":"` + esc + `"}` + "\n"
	want = strings.Replace(want, `"k\u00e9\u2028"`, `"ké\u2028"`, 1)
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	assertJSONLine(t, []byte(got))
}

// TestEmpty: what a JSON field holds when its value is missing or empty, per field and with
// OmitEmpty.
func TestEmpty(t *testing.T) {
	fields := []JSONField{
		{Key: "null", Format: "%ROUTE_NAME%"},
		{Key: "omit", Format: "%ROUTE_NAME%", Empty: EmptyOmit},
		{Key: "str", Format: "%ROUTE_NAME%", Empty: EmptyString},
		{Key: "emptyhdr", Format: "%REQ(E)%"},
		{Key: "emptyhdr_omit", Format: "%REQ(E)%", Empty: EmptyOmit},
		{Key: "status", Format: "%RESPONSE_CODE%"},
		{Key: "status_omit", Format: "%RESPONSE_CODE%", Empty: EmptyOmit},
		{Key: "status_str", Format: "%RESPONSE_CODE%", Empty: EmptyString},
		{Key: "mixed", Format: "r=%ROUTE_NAME%", Empty: EmptyOmit},
		{Key: "blank", Format: "", Empty: EmptyOmit},
		{Key: "bytes", Format: "%BYTES_SENT%", Empty: EmptyOmit},
	}
	r := &Record{ReqHeader: http.Header{"E": {""}}}
	f, _ := ParseJSON(fields, JSONOptions{})
	want := `{"null":null,"str":"","emptyhdr":"","status":0,"status_str":0,"mixed":"r=-","bytes":0}` + "\n"
	if got := string(f.Append(nil, r)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	f, _ = ParseJSON(fields, JSONOptions{OmitEmpty: true})
	want = `{"str":"","status_str":0,"mixed":"r=-","bytes":0}` + "\n"
	if got := string(f.Append(nil, r)); got != want {
		t.Errorf("OmitEmpty: got  %s\nwant %s", got, want)
	}
	// Everything omitted: an empty object; the first field written gets no comma.
	f, _ = ParseJSON([]JSONField{{Key: "a", Format: "%ERROR%"}, {Key: "b", Format: "%ERROR%"}, {Key: "c", Format: "%BYTES_SENT%"}}, JSONOptions{OmitEmpty: true})
	if got := string(f.Append(nil, r)); got != `{"c":0}`+"\n" {
		t.Errorf("got %s", got)
	}
	f, _ = ParseJSON(nil, JSONOptions{})
	if got := string(f.Append(nil, r)); got != "{}\n" {
		t.Errorf("no fields: %s", got)
	}
}

// TestHeaders: a format says which headers it reads, by canonical name, once each.
func TestHeaders(t *testing.T) {
	f, err := ParseText(strings.TrimSuffix(DefaultText, "\n") + "%REQ(user-agent)% %REQ(:PROTOCOL)% %REQ(HOST)% %TRAILER(grpc-status?Grpc-Message)% %RESP(:STATUS)% %PATH%")
	if err != nil {
		t.Fatal(err)
	}
	req, resp, tr := f.Headers()
	if got := strings.Join(req, ","); got != "X-Forwarded-For,User-Agent,X-Request-Id,:protocol" {
		t.Errorf("req %s", got)
	}
	if got := strings.Join(resp, ","); got != "X-Envoy-Upstream-Service-Time" {
		t.Errorf("resp %s", got)
	}
	if got := strings.Join(tr, ","); got != "Grpc-Status,Grpc-Message" {
		t.Errorf("trailer %s", got)
	}
	req[0] = "changed"
	if again, _, _ := f.Headers(); again[0] != "X-Forwarded-For" {
		t.Error("Headers returns the format's own slice")
	}
	j, _ := ParseJSON(DefaultJSON(), JSONOptions{})
	if req, resp, tr := j.Headers(); strings.Join(req, ",") != "X-Request-Id,User-Agent" || resp != nil || tr != nil {
		t.Errorf("DefaultJSON reads %v %v %v", req, resp, tr)
	}
}

// TestStartTimeCache: the per-second cache serves every line of its second with that line's
// own fractional digits, and an older second never replaces it (nor prints its digits).
func TestStartTimeCache(t *testing.T) {
	f, err := ParseText("%START_TIME(%H:%M:%S.%6f|%3f|%E2S)%")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{base.Add(6000), "03:04:05.000006|000|05.00"},
		{base.Add(999999999), "03:04:05.999999|999|05.99"},
		{base.Add(time.Second + 120000), "03:04:06.000120|000|06.00"},
		{base.Add(-time.Hour + 5e8), "02:04:05.500000|500|05.50"}, // older: rendered directly
		{base.Add(time.Second + 7e8), "03:04:06.700000|700|06.70"},
		{base.Add(time.Second).In(time.FixedZone("x", 7200)), "03:04:06.000000|000|06.00"},
	} {
		if got := string(f.Append(nil, &Record{Start: tc.t})); got != tc.want+"\n" {
			t.Errorf("%v: %q, want %q", tc.t, got, tc.want)
		}
	}
	if c := f.pieces[0].op.tf.cache.Load(); c.unix != base.Unix()+1 {
		t.Errorf("cache holds %d, want the newest second %d", c.unix, base.Unix()+1)
	}
}

// TestFlags: bits never move (the gateway's first eleven keep their positions), every flag
// has Envoy's short and long name.
func TestFlags(t *testing.T) {
	if FlagRateLimited != 1 || FlagMaxStreamDuration != 1<<10 || FlagNoRoute != 1<<11 || FlagLocalReset != 1<<16 {
		t.Error("flag bits moved")
	}
	all := Flags(1<<len(flagNames) - 1)
	if got := all.String(); got != "RL,DI,FI,UO,URX,UH,UF,UT,RLSE,SI,UMSDR,NR,UC,DC,UAEX,UPE,LR" {
		t.Errorf("String %s", got)
	}
	if got := string(all.AppendLong(nil)); got != "RateLimited,DelayInjected,FaultInjected,UpstreamOverflow,UpstreamRetryLimitExceeded,"+
		"NoHealthyUpstream,UpstreamConnectionFailure,UpstreamRequestTimeout,RateLimitServiceError,StreamIdleTimeout,"+
		"UpstreamMaxStreamDurationReached,NoRouteFound,UpstreamConnectionTermination,DownstreamConnectionTermination,"+
		"UnauthorizedExternalService,UpstreamProtocolError,LocalReset" {
		t.Errorf("AppendLong %s", got)
	}
	if Flags(0).String() != "" || string(Flags(0).AppendLong(nil)) != "" {
		t.Error("no flags print something")
	}
	if got := (FlagRateLimited | FlagDelayInjected).String(); got != "RL,DI" {
		t.Errorf("RL|DI: %s", got)
	}
}

// TestTruncate: a cut never splits a UTF-8 sequence and never exceeds the limit.
func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 5, "abc"}, {"abc", 3, "abc"}, {"abc", 2, "ab"},
		{"日本", 1, ""}, {"日本", 2, ""}, {"日本", 3, "日"}, {"日本", 5, "日"},
		{"a\xff\xfe", 2, "a\xff"}, {"\x80\x80\x80\x80\x80", 3, "\x80\x80\x80"}, {"ab\xe6\x97", 3, "ab\xe6"},
		{"é", 1, ""}, {"😀x", 3, ""}, {"😀x", 4, "😀"},
	} {
		if got := truncate(tc.s, tc.n); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

// TestConcurrentAppend: one Format serves many goroutines (run with -race); lines of many
// seconds interleave without mixing up their time.
func TestConcurrentAppend(t *testing.T) {
	f, err := ParseJSON([]JSONField{{Key: "t", Format: "%START_TIME(%s.%6f)%"}, {Key: "p", Format: "%REQ(:PATH)%"}}, JSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	done := make(chan error)
	for g := 0; g < 4; g++ {
		go func() {
			var buf []byte
			for i := 0; i < 2000; i++ {
				start := base.Add(time.Duration((i*7+g)%5)*time.Second + time.Duration(i)*time.Microsecond)
				buf = f.Append(buf[:0], &Record{Start: start, Path: "/" + strconv.Itoa(i)})
				want := `{"t":"` + strconv.FormatInt(start.Unix(), 10) + "." + fmt.Sprintf("%06d", start.Nanosecond()/1000) + `","p":"/` + strconv.Itoa(i) + `"}` + "\n"
				if string(buf) != want {
					done <- fmt.Errorf("got %s want %s", buf, want)
					return
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
