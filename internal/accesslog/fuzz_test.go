package accesslog

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// everyOperator uses each supported operator once (with arguments and lengths where they take
// them), for the fuzzers' records.
var everyOperator = strings.Join(everyOperatorList, " ")

var everyOperatorList = []string{"%START_TIME%", "%START_TIME(%s.%9f %a %e %j)%", "%REQ(:METHOD)%", "%REQ(:PATH):7%", "%REQ(:AUTHORITY)%",
	"%REQ(:SCHEME)%", "%REQ(:PROTOCOL)%", "%REQUEST_HEADER(X-A?X-B):5%", "%RESP(X-A)%", "%RESPONSE_HEADER(:STATUS)%", "%TRAILER(X-A)%",
	"%RESPONSE_TRAILER(X-B):3%", "%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)%", "%PATH(NQ:ORIG):4%", "%RESPONSE_CODE%",
	"%RESPONSE_CODE_DETAILS%", "%RESPONSE_CODE_DETAILS(ALLOW_WHITESPACES)%", "%RESPONSE_FLAGS%", "%RESPONSE_FLAGS_LONG%", "%DURATION%",
	"%REQUEST_DURATION%", "%RESPONSE_DURATION%", "%RESPONSE_TX_DURATION%", "%BYTES_RECEIVED%", "%BYTES_SENT%", "%PROTOCOL%", "%UPSTREAM_HOST%",
	"%UPSTREAM_CLUSTER%", "%UPSTREAM_TRANSPORT_FAILURE_REASON%", "%UPSTREAM_REQUEST_ATTEMPT_COUNT%", "%DOWNSTREAM_REMOTE_ADDRESS%",
	"%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT(12)%", "%DOWNSTREAM_REMOTE_PORT%",
	"%DOWNSTREAM_LOCAL_ADDRESS%", "%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT(100)%", "%DOWNSTREAM_LOCAL_PORT%", "%REQUESTED_SERVER_NAME%",
	"%ROUTE_NAME%", "%TRACE_ID%", "%CONNECTION_ID%", "%HOSTNAME%", "%DYNAMIC_METADATA(ns)%", "%DYNAMIC_METADATA(ns:k):2%", "%DURATION_MS%",
	"%UPSTREAM_DURATION_MS%", "%ERROR%", "%%"}

// fuzzRecord fills every field a format reads from the fuzzer's values.
func fuzzRecord(s string, n int64, addr []byte) *Record {
	a, _ := netip.AddrFromSlice(addr)
	if len(addr) > 16 {
		a = a.WithZone(s)
	}
	ap := netip.AddrPortFrom(a, uint16(n))
	h := http.Header{"X-A": {s, s + "?" + s}, "X-B": {s}, ":protocol": {s}, "X-Request-Id": {s}, "User-Agent": {s}}
	return &Record{
		Start:  time.Unix(n%(1<<40), n%1e9),
		Method: s, Scheme: s, Authority: s, Path: s + "?" + s, OriginalPath: s,
		ReqHeader: h, RespHeader: h, Trailer: h,
		Protocol: s, Status: int(n % 1000), CodeDetails: s, Flags: Flags(n),
		Duration: time.Duration(n), RequestDuration: time.Duration(-n), ResponseDuration: time.Duration(n / 3), ResponseTxDuration: time.Duration(n % 7),
		BytesReceived: n, BytesSent: -n,
		UpstreamHost: s, UpstreamCluster: s, UpstreamTransportFailureReason: s, UpstreamAttempts: int(n),
		DownstreamRemote: ap, DownstreamLocal: ap, ServerName: s, RouteName: s, TraceID: s, ConnectionID: uint64(n),
		Metadata:         []Metadata{{"ns", "k", s}, {"ns", s, s}, {s, "k", s}, {MetaRateLimit, MetaDecision, s}, {MetaAuth, MetaDecision, s}},
		UpstreamDuration: time.Duration(n), Error: s,
	}
}

var fuzzSeeds = []string{"", "plain", "\"\\", "\x00\x1f\n\r\t\x7f", "<script>&", "\xff\xfe", "\u2028\u2029", "日本語", "a?b", "%", "-"}

// FuzzParseText: no format makes the parser or Append panic; a format that compiles writes
// exactly one line whatever the record holds.
func FuzzParseText(f *testing.F) {
	for _, s := range []string{"", DefaultText, everyOperator, "%", "%%", "%REQ(", "%REQ(A):", "%START_TIME(%", "%START_TIME(%E9S)%x%REQ(a?b):1%",
		"%DYNAMIC_METADATA(a:b)%", "a\nb", "%REQ(A)%\n\n", "%START_TIME(()%)%"} {
		f.Add(s, "v\n", int64(1460751420310123456), []byte{10, 0, 0, 1})
	}
	f.Fuzz(func(t *testing.T, format, s string, n int64, addr []byte) {
		fm, err := ParseText(format)
		if err != nil {
			if e, ok := err.(*Error); !ok || e.Offset < 0 || e.Offset > len(format) || !strings.HasPrefix(e.Error(), "accesslog: format: ") {
				t.Fatalf("%q: error %#v", format, err)
			}
			return
		}
		for _, r := range []*Record{fuzzRecord(s, n, addr), {}, docRecord()} {
			assertTextLine(t, fm.Append(nil, r))
		}
	})
}

// FuzzParseJSON: no field set makes ParseJSON or Append panic; a format that compiles writes
// one valid JSON object on one line whatever the record holds.
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{"", "%RESPONSE_CODE%", "%DYNAMIC_METADATA(ns)%", "x%DYNAMIC_METADATA(ns)%y", everyOperator, "%REQ(X-A):3%", "%%", "%"} {
		f.Add("key", s, "v\"\n", int64(204), []byte{0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint8(0))
	}
	f.Fuzz(func(t *testing.T, key, format, s string, n int64, addr []byte, opt uint8) {
		fields := []JSONField{{Key: key, Format: format, Empty: Empty(opt % 3)}, {Key: key + "2", Format: "%REQ(X-A)%" + format, Empty: Empty(opt / 3 % 3)}}
		fm, err := ParseJSON(fields, JSONOptions{OmitEmpty: opt&0x80 != 0})
		if err != nil {
			if e, ok := err.(*Error); !ok || !e.JSON || e.Offset < -1 || e.Offset > len(format)+len("%REQ(X-A)%") || !strings.HasPrefix(e.Error(), "accesslog: json[") {
				t.Fatalf("%q: error %#v", format, err)
			}
			return
		}
		for _, r := range []*Record{fuzzRecord(s, n, addr), {}, docRecord()} {
			assertJSONLine(t, fm.Append(nil, r))
		}
	})
}

// FuzzAppend: whatever a record holds, the default formats and one using every operator write
// one valid line (JSON: one valid object), and appending after other bytes leaves them alone.
func FuzzAppend(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, int64(-1), []byte{127, 0, 0, 1})
		f.Add(s, int64(1<<62), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1, 'z'})
	}
	dt, _ := ParseText("")
	all, err := ParseText(everyOperator)
	if err != nil {
		f.Fatal(err)
	}
	dj, _ := ParseJSON(DefaultJSON(), JSONOptions{})
	var fields []JSONField
	for i, op := range everyOperatorList {
		fields = append(fields, JSONField{Key: op, Format: op, Empty: Empty(i % 3)}, JSONField{Key: "s" + op, Format: "<" + op + ">"})
	}
	aj, err := ParseJSON(fields, JSONOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string, n int64, addr []byte) {
		r := fuzzRecord(s, n, addr)
		for _, fm := range []*Format{dt, all} {
			line := fm.Append([]byte("keep"), r)
			if string(line[:4]) != "keep" {
				t.Fatal("Append changed the bytes before it")
			}
			assertTextLine(t, line[4:])
		}
		for _, fm := range []*Format{dj, aj} {
			line := fm.Append([]byte("keep"), r)
			if string(line[:4]) != "keep" {
				t.Fatal("Append changed the bytes before it")
			}
			assertJSONLine(t, line[4:])
		}
	})
}
