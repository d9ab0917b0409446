package accesslog

import (
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// The gateway's access-log encoder before this package (internal/proxy/accesslog.go's
// appendJSON, appendTime and appendField), kept here only to prove DefaultJSON writes the
// same line and to compare speed. It is not production code.

type oldRecord struct {
	RequestID, ClientIP, Method, Host, Path, Protocol string
	Status                                            int
	BytesReceived, BytesSent                          int64
	DurationMS, UpstreamMS                            float64
	Route, Backend, Upstream, Error, UserAgent        string
	Flags                                             Flags
	RateLimit, Auth                                   string
}

func (rec *oldRecord) appendJSON(b []byte, now time.Time) []byte {
	b = append(b, `{"time":"`...)
	b = oldAppendTime(b, now)
	b = append(b, '"')
	b = oldAppendField(b, "request_id", rec.RequestID)
	b = oldAppendField(b, "client_ip", rec.ClientIP)
	b = oldAppendField(b, "method", rec.Method)
	b = oldAppendField(b, "host", rec.Host)
	b = oldAppendField(b, "path", rec.Path)
	b = oldAppendField(b, "protocol", rec.Protocol)
	if rec.Status != 0 {
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(rec.Status), 10)
	}
	b = append(b, `,"bytes_received":`...)
	b = strconv.AppendInt(b, rec.BytesReceived, 10)
	b = append(b, `,"bytes_sent":`...)
	b = strconv.AppendInt(b, rec.BytesSent, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, rec.DurationMS, 'f', -1, 64)
	if rec.UpstreamMS != 0 {
		b = append(b, `,"upstream_ms":`...)
		b = strconv.AppendFloat(b, rec.UpstreamMS, 'f', -1, 64)
	}
	for _, f := range [...]struct{ k, v string }{{"route", rec.Route}, {"backend", rec.Backend}, {"upstream_address", rec.Upstream}, {"error", rec.Error}, {"user_agent", rec.UserAgent}, {"ratelimit", rec.RateLimit}, {"auth", rec.Auth}} {
		if f.v != "" {
			b = oldAppendField(b, f.k, f.v)
		}
	}
	if rec.Flags != 0 {
		b = append(b, `,"response_flags":"`...)
		b = rec.Flags.Append(b)
		b = append(b, '"')
	}
	return append(b, '}', '\n')
}

var oldSecondPrefix atomic.Pointer[struct {
	unix   int64
	prefix []byte
}]

func oldAppendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	sec := t.Unix()
	p := oldSecondPrefix.Load()
	if p == nil || p.unix != sec {
		p = &struct {
			unix   int64
			prefix []byte
		}{sec, t.AppendFormat(nil, "2006-01-02T15:04:05.")}
		oldSecondPrefix.Store(p)
	}
	b = append(b, p.prefix...)
	us := t.Nanosecond() / 1000
	for div := 100000; div > 0; div /= 10 {
		b = append(b, byte('0'+us/div%10))
	}
	return append(b, 'Z')
}

func oldAppendField(b []byte, key, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return oldAppendJSONString(b, v)
}

func oldAppendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	clean := 0
	for clean < len(s) && s[clean] >= 0x20 && s[clean] < utf8.RuneSelf && s[clean] != '"' && s[clean] != '\\' && s[clean] != '<' && s[clean] != '>' && s[clean] != '&' {
		clean++
	}
	b = append(b, s[:clean]...)
	for i := clean; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// toOld is the old record the gateway filled for the exchange r describes.
func toOld(r *Record) *oldRecord {
	meta := func(ns string) string {
		for i := len(r.Metadata) - 1; i >= 0; i-- {
			if r.Metadata[i].Namespace == ns && r.Metadata[i].Key == MetaDecision {
				return r.Metadata[i].Value
			}
		}
		return ""
	}
	path := r.Path
	if r.OriginalPath != "" {
		path = r.OriginalPath
	}
	if k := indexByte(path, '?'); k >= 0 {
		path = path[:k]
	}
	o := &oldRecord{RequestID: r.ReqHeader.Get("X-Request-Id"), Method: r.Method, Host: r.Authority, Path: path, Protocol: r.Protocol,
		Status: r.Status, BytesReceived: r.BytesReceived, BytesSent: r.BytesSent,
		DurationMS: float64(r.Duration.Microseconds()) / 1000, UpstreamMS: float64(r.UpstreamDuration.Microseconds()) / 1000,
		Route: r.RouteName, Backend: r.UpstreamCluster, Upstream: r.UpstreamHost, Error: r.Error, UserAgent: r.ReqHeader.Get("User-Agent"),
		Flags: r.Flags, RateLimit: meta(MetaRateLimit), Auth: meta(MetaAuth)}
	if r.DownstreamRemote.IsValid() {
		o.ClientIP = r.DownstreamRemote.Addr().String()
	}
	return o
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// benchRecord is a typical proxied request: a browser's headers, an upstream answer.
func benchRecord() *Record {
	return &Record{
		Start:  time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.UTC),
		Method: "GET", Scheme: "https", Authority: "api.example.com", Path: "/v1/users/42?expand=orders",
		ReqHeader: http.Header{
			"User-Agent":      {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"},
			"Accept":          {"application/json"},
			"Accept-Encoding": {"gzip, deflate, br"},
			"Accept-Language": {"en-US,en;q=0.9"},
			"X-Request-Id":    {"9f86d081884c7d659a2feaa0c55ad015"},
			"X-Forwarded-For": {"203.0.113.7"},
			"Cookie":          {"session=abc123"},
			"Traceparent":     {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		},
		RespHeader:       http.Header{"Content-Type": {"application/json"}, "Content-Length": {"1234"}, "X-Envoy-Upstream-Service-Time": {"3"}},
		Protocol:         "HTTP/2",
		Status:           200,
		CodeDetails:      "via_upstream",
		Duration:         4321 * time.Microsecond,
		BytesReceived:    0,
		BytesSent:        1234,
		UpstreamHost:     "10.0.3.17:8080",
		UpstreamCluster:  "users",
		UpstreamAttempts: 1,
		DownstreamRemote: netip.MustParseAddrPort("203.0.113.7:51234"),
		DownstreamLocal:  netip.MustParseAddrPort("10.0.0.2:443"),
		RouteName:        "default/users",
		Metadata:         []Metadata{{MetaRateLimit, MetaDecision, "ok"}},
		UpstreamDuration: 3125 * time.Microsecond,
	}
}

// TestDefaultJSONMatchesOldEncoder: DefaultJSON writes, byte for byte, the line the gateway
// wrote before, for HTTP requests, refused and broken ones, and TCP/TLS/UDP sessions.
func TestDefaultJSONMatchesOldEncoder(t *testing.T) {
	f, err := ParseJSON(DefaultJSON(), JSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	full := benchRecord()
	full.Start = start.Add(time.Second)
	full.Flags = FlagRateLimited | FlagDelayInjected
	full.Error, full.Path, full.OriginalPath = "dial tcp: refused <&>", "/new?x=1", "/q\"\\\n\t\x01<&>\u2028é\xff?y"
	full.Metadata = append(full.Metadata, Metadata{MetaAuth, MetaDecision, "basic"}, Metadata{MetaRateLimit, MetaDecision, "over_limit"})
	cases := map[string]*Record{
		"http":  benchRecord(),
		"full":  full,
		"no-ua": {Start: start, Method: "POST", Authority: "h", Path: "/", Protocol: "HTTP/1.1", Status: 201, ReqHeader: http.Header{"X-Request-Id": {"id"}, "User-Agent": {""}}, DownstreamRemote: netip.MustParseAddrPort("[2001:db8::1]:5")},
		"client-left": {Start: start, Method: "GET", Authority: "h", Path: "/slow", Protocol: "HTTP/1.1", ReqHeader: http.Header{"X-Request-Id": {"id"}},
			DownstreamRemote: netip.MustParseAddrPort("127.0.0.1:5"), Duration: 2 * time.Second, RouteName: "r", UpstreamCluster: "b"},
		"refused": {Start: start, Status: 400, Error: "malformed request", RouteName: "none", Protocol: "HTTP/1.1"},
		"tcp": {Start: start, Protocol: "TCP", DownstreamRemote: netip.MustParseAddrPort("192.0.2.1:40000"), RouteName: "default/db", UpstreamCluster: "db",
			UpstreamHost: "10.0.0.9:5432", BytesReceived: 512, BytesSent: 2048, Duration: 90 * time.Second, UpstreamDuration: 800 * time.Microsecond},
		"tls-no-route": {Start: start, Protocol: "TLS", DownstreamRemote: netip.MustParseAddrPort("192.0.2.1:40000"), Error: "no route", Duration: 1500},
		"udp":          {Start: start.Add(-time.Hour), Protocol: "UDP", DownstreamRemote: netip.MustParseAddrPort("192.0.2.1:53"), UpstreamDuration: 1},
		"empty":        {Start: start},
	}
	for name, r := range cases {
		got := f.Append(nil, r)
		want := toOld(r).appendJSON(nil, r.Start)
		if string(got) != string(want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
		assertJSONLine(t, got)
	}
}

// TestAppendAllocs: appending a line allocates nothing once the buffer is large enough.
func TestAppendAllocs(t *testing.T) {
	dj, _ := ParseJSON(DefaultJSON(), JSONOptions{})
	dt, _ := ParseText("")
	cj, _ := ParseJSON(customJSON, JSONOptions{})
	r := benchRecord()
	r.Metadata = append(r.Metadata, Metadata{MetaAuth, "identity", "alice\n"})
	r.Flags = FlagRateLimited
	all, err := ParseText(everyOperator)
	if err != nil {
		t.Fatal(err)
	}
	var fields []JSONField
	for _, op := range everyOperatorList {
		fields = append(fields, JSONField{Key: op, Format: op}, JSONField{Key: "s" + op, Format: "<" + op + ">"})
	}
	allJSON, err := ParseJSON(fields, JSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]*Format{"DefaultJSON": dj, "default text": dt, "custom JSON": cj, "every operator": all, "every operator, JSON": allJSON} {
		buf := make([]byte, 0, 4096)
		f.Append(buf, r) // warm the time cache
		if n := testing.AllocsPerRun(100, func() { buf = f.Append(buf[:0], r) }); n != 0 {
			t.Errorf("%s: %v allocations per line", name, n)
		}
	}
}

// customJSON is a custom format of ten fields, three of them headers.
var customJSON = []JSONField{
	{Key: "start", Format: "%START_TIME%"},
	{Key: "method", Format: "%REQ(:METHOD)%"},
	{Key: "path", Format: "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH):256%"},
	{Key: "status", Format: "%RESPONSE_CODE%"},
	{Key: "duration", Format: "%DURATION%"},
	{Key: "ua", Format: "%REQ(USER-AGENT)%"},
	{Key: "xff", Format: "%REQ(X-FORWARDED-FOR)%"},
	{Key: "ctype", Format: "%RESP(CONTENT-TYPE)%"},
	{Key: "upstream", Format: "%UPSTREAM_HOST% (%UPSTREAM_CLUSTER%)"},
	{Key: "auth", Format: "%DYNAMIC_METADATA(apoxy.auth)%"},
}

func benchFormat(b *testing.B, f *Format, r *Record) {
	buf := make([]byte, 0, 1024)
	buf = f.Append(buf, r)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf = f.Append(buf[:0], r)
	}
}

// BenchmarkAppendDefaultJSON: the gateway's own line through DefaultJSON, against the encoder
// it replaces writing the same line.
func BenchmarkAppendDefaultJSON(b *testing.B) {
	r := benchRecord()
	b.Run("accesslog", func(b *testing.B) {
		f, _ := ParseJSON(DefaultJSON(), JSONOptions{})
		benchFormat(b, f, r)
	})
	b.Run("old", func(b *testing.B) {
		old := toOld(r)
		buf := old.appendJSON(make([]byte, 0, 1024), r.Start)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			buf = old.appendJSON(buf[:0], r.Start)
		}
	})
}

// BenchmarkDefaultJSONVsOld runs the two encoders in alternating slices of the same loop, so
// that a busy machine slows both alike, and reports the ratio of their times (new/old).
func BenchmarkDefaultJSONVsOld(b *testing.B) {
	r := benchRecord()
	f, _ := ParseJSON(DefaultJSON(), JSONOptions{})
	old := toOld(r)
	buf := make([]byte, 0, 1024)
	var tNew, tOld time.Duration
	const slice = 200
	for done := 0; done < b.N; done += slice {
		t0 := time.Now()
		for i := 0; i < slice; i++ {
			buf = f.Append(buf[:0], r)
		}
		t1 := time.Now()
		for i := 0; i < slice; i++ {
			buf = old.appendJSON(buf[:0], r.Start)
		}
		t2 := time.Now()
		tNew += t1.Sub(t0)
		tOld += t2.Sub(t1)
	}
	b.ReportMetric(float64(tNew)/float64(tOld), "new/old")
	b.ReportMetric(float64(tNew.Nanoseconds())/float64(b.N), "new-ns/op")
	b.ReportMetric(float64(tOld.Nanoseconds())/float64(b.N), "old-ns/op")
}

// BenchmarkAppendEnvoyDefaultText: Envoy's default text line.
func BenchmarkAppendEnvoyDefaultText(b *testing.B) {
	f, _ := ParseText("")
	benchFormat(b, f, benchRecord())
}

// BenchmarkAppendCustomJSON: ten fields, three request headers and a response header among them.
func BenchmarkAppendCustomJSON(b *testing.B) {
	f, err := ParseJSON(customJSON, JSONOptions{})
	if err != nil {
		b.Fatal(err)
	}
	r := benchRecord()
	r.Metadata = append(r.Metadata, Metadata{MetaAuth, "identity", "alice"})
	benchFormat(b, f, r)
}
