package accesslog

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// docRecord is the exchange of Envoy's default-format example ("Default Format String" in
// configuration/observability/access_log/usage): a POST to /api/v1/locations over HTTP/2,
// answered 204 after 226 ms.
func docRecord() *Record {
	return &Record{
		Start:  time.Date(2016, 4, 15, 20, 17, 0, 310123456, time.UTC),
		Method: "POST", Scheme: "https", Authority: "locations", Path: "/api/v1/locations",
		ReqHeader: http.Header{
			"X-Forwarded-For": {"10.0.35.28"},
			"User-Agent":      {"nsq2http"},
			"X-Request-Id":    {"cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2"},
			"Multi":           {"a", "b"},
			"Empty":           {""},
			"X-Unicode":       {"日本語"},
		},
		RespHeader:         http.Header{"X-Envoy-Upstream-Service-Time": {"100"}, "Set-Cookie": {"a=1", "b=2"}},
		Trailer:            http.Header{"Grpc-Status": {"0"}},
		Protocol:           "HTTP/2",
		Status:             204,
		CodeDetails:        "via_upstream",
		Duration:           226*time.Millisecond + 500*time.Microsecond,
		RequestDuration:    12 * time.Millisecond,
		ResponseDuration:   150*time.Millisecond + 900*time.Microsecond,
		ResponseTxDuration: 75 * time.Millisecond,
		BytesReceived:      154,
		BytesSent:          0,
		UpstreamHost:       "tcp://10.0.2.1:80",
		UpstreamCluster:    "locations-svc",
		UpstreamAttempts:   1,
		DownstreamRemote:   netip.MustParseAddrPort("10.0.35.28:43210"),
		DownstreamLocal:    netip.MustParseAddrPort("10.1.10.23:443"),
		ServerName:         "locations.example.com",
		RouteName:          "default/locations",
		TraceID:            "4bf92f3577b34da6a3ce929d0e0e4736",
		ConnectionID:       42,
		Metadata: []Metadata{
			{"com.test.my_filter", "test_key", "foo"},
			{"com.test.my_filter", "other", "bar"},
			{"apoxy.ratelimit", "decision", "ok"},
		},
		UpstreamDuration: 3250 * time.Microsecond,
	}
}

// opCase is one operator's output for a record: the text line (without its newline) and the
// JSON value of a field whose format is the operator alone.
type opCase struct {
	format string
	rec    func(*Record) // changes to docRecord()
	text   string
	json   string
}

// TestOperators covers every supported operator, with Envoy's documented examples where the
// documentation gives one (the section is named in a comment; "usage" is
// configuration/observability/access_log/usage, "substitution" is
// configuration/advanced/substitution_formatter, the operator reference).
func TestOperators(t *testing.T) {
	host, _ := os.Hostname()
	l4 := func(r *Record) { *r = Record{Start: r.Start, BytesReceived: 10, BytesSent: 20, Duration: time.Second} }
	cases := []opCase{
		// usage, "Default Format String": [2016-04-15T20:17:00.310Z]
		{format: "%START_TIME%", text: "2016-04-15T20:17:00.310Z", json: `"2016-04-15T20:17:00.310Z"`},
		{format: "%START_TIME()%", text: "2016-04-15T20:17:00.310Z", json: `"2016-04-15T20:17:00.310Z"`},
		// substitution, START_TIME: "%START_TIME(%Y/%m/%dT%H:%M:%S%z %s)%"; typed JSON renders a string.
		{format: "%START_TIME(%Y/%m/%dT%H:%M:%S%z %s)%", text: "2016/04/15T20:17:00+0000 1460751420", json: `"2016/04/15T20:17:00+0000 1460751420"`},
		// substitution, START_TIME: "%START_TIME(%s.%3f)%" ("E.g. 1527590590.528"), %6f, %9f.
		{format: "%START_TIME(%s.%3f)%", text: "1460751420.310", json: `"1460751420.310"`},
		{format: "%START_TIME(%s.%6f)%", text: "1460751420.310123", json: `"1460751420.310123"`},
		{format: "%START_TIME(%s.%9f)%", text: "1460751420.310123456", json: `"1460751420.310123456"`},
		{format: "%START_TIME(%f|%1f|%2f|%4f|%5f|%7f|%8f)%", text: "310123456|3|31|3101|31012|3101234|31012345", json: `"310123456|3|31|3101|31012|3101234|31012345"`},
		{format: "%START_TIME(%a %A %b %h %B %e %j %y %C %I%p %u %w %Z %%)%", text: "Fri Friday Apr Apr April 15 106 16 20 08PM 5 5 UTC %", json: `"Fri Friday Apr Apr April 15 106 16 20 08PM 5 5 UTC %"`},
		{format: "%START_TIME(%F %T|%R|%D|%E3S|%E0S)%", text: "2016-04-15 20:17:00|20:17|04/15/16|00.310|00", json: `"2016-04-15 20:17:00|20:17|04/15/16|00.310|00"`},
		{format: "%START_TIME(%e)%", rec: func(r *Record) { r.Start = r.Start.AddDate(0, 0, -10) }, text: " 5", json: `" 5"`},
		{format: "%START_TIME((%H) %M)%", text: "(20) 17", json: `"(20) 17"`},
		{format: `%START_TIME(%H"<\%M)%`, text: `20"<\17`, json: `"20\"\u003c\\17"`},
		{format: "%START_TIME(%H:%M:%S)%", rec: func(r *Record) { r.Start = r.Start.In(time.FixedZone("x", 3600)) }, text: "20:17:00", json: `"20:17:00"`},

		// substitution, REQ(X?Y):Z: X, else Y, cut to Z; neither: "-".
		{format: "%REQ(:METHOD)%", text: "POST", json: `"POST"`},
		{format: "%REQ(:method)%", text: "POST", json: `"POST"`},
		{format: "%REQ(:PATH)%", text: "/api/v1/locations", json: `"/api/v1/locations"`},
		{format: "%REQ(:AUTHORITY)%", text: "locations", json: `"locations"`},
		{format: "%REQ(:SCHEME)%", text: "https", json: `"https"`},
		{format: "%REQ(:PROTOCOL)%", text: "-", json: `null`},
		{format: "%REQ(:PROTOCOL)%", rec: func(r *Record) { r.ReqHeader.Set(":protocol", "websocket") }, text: "websocket", json: `"websocket"`},
		{format: "%REQ(USER-AGENT)%", text: "nsq2http", json: `"nsq2http"`},
		{format: "%REQ(user-agent)%", text: "nsq2http", json: `"nsq2http"`},
		{format: "%REQ(X-MISSING)%", text: "-", json: `null`},
		{format: "%REQ(X-MISSING?USER-AGENT)%", text: "nsq2http", json: `"nsq2http"`},
		{format: "%REQ(USER-AGENT?X-REQUEST-ID)%", text: "nsq2http", json: `"nsq2http"`},
		{format: "%REQ(X-MISSING?X-ALSO-MISSING)%", text: "-", json: `null`},
		{format: "%REQ(USER-AGENT):3%", text: "nsq", json: `"nsq"`},
		{format: "%REQ(USER-AGENT):100%", text: "nsq2http", json: `"nsq2http"`},
		{format: "%REQ(X-UNICODE):4%", text: "日", json: `"日"`}, // 4 bytes would split 本
		{format: "%REQ(X-UNICODE):6%", text: "日本", json: `"日本"`},
		{format: "%REQ(MULTI)%", text: "a,b", json: `"a,b"`},
		{format: "%REQ(MULTI):2%", text: "a,", json: `"a,"`},
		{format: "%REQ(MULTI):1%", text: "a", json: `"a"`},
		{format: "%REQ(EMPTY)%", text: "-", json: `""`},
		{format: "%REQ(EMPTY?USER-AGENT)%", text: "-", json: `""`}, // X is set (empty): Y is not read
		{format: "%REQ(HOST)%", text: "locations", json: `"locations"`},
		{format: "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", text: "/api/v1/locations", json: `"/api/v1/locations"`},
		{format: "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", rec: func(r *Record) { r.OriginalPath = "/old?q=1" }, text: "/old?q=1", json: `"/old?q=1"`},
		{format: "%REQ(X-ENVOY-ORIGINAL-PATH)%", rec: func(r *Record) { r.ReqHeader.Set("X-Envoy-Original-Path", "/forged") }, text: "-", json: `null`},
		{format: "%REQUEST_HEADER(X-REQUEST-ID)%", text: "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2", json: `"cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2"`},
		{format: "%REQ(:METHOD)%", rec: l4, text: "-", json: `null`}, // substitution: TCP/UDP "-"
		{format: "%REQ(USER-AGENT)%", rec: l4, text: "-", json: `null`},
		// substitution, RESP(X?Y):Z and TRAILER(X?Y):Z: the same, from the response.
		{format: "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%", text: "100", json: `"100"`},
		{format: "%RESP(SET-COOKIE)%", text: "a=1,b=2", json: `"a=1,b=2"`},
		{format: "%RESP(:STATUS)%", text: "204", json: `"204"`},
		{format: "%RESP(:STATUS)%", rec: l4, text: "-", json: `null`},
		{format: "%RESPONSE_HEADER(X-MISSING?X-ENVOY-UPSTREAM-SERVICE-TIME):2%", text: "10", json: `"10"`},
		{format: "%TRAILER(GRPC-STATUS)%", text: "0", json: `"0"`},
		{format: "%RESPONSE_TRAILER(GRPC-MESSAGE?grpc-status)%", text: "0", json: `"0"`},
		{format: "%TRAILER(GRPC-MESSAGE)%", text: "-", json: `null`},
		// Envoy PR 7847, REQ_WITHOUT_QUERY: for ":path": "/?ok=true", %REQ_WITHOUT_QUERY(:PATH)% logs "/".
		{format: "%REQ(:PATH)%", rec: func(r *Record) { r.Path = "/?ok=true" }, text: "/?ok=true", json: `"/?ok=true"`},
		{format: "%REQ_WITHOUT_QUERY(:PATH)%", rec: func(r *Record) { r.Path = "/?ok=true" }, text: "/", json: `"/"`},
		{format: "%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH):4%", rec: func(r *Record) { r.Path = "/abcdef?x" }, text: "/abc", json: `"/abc"`},
		{format: "%REQ_WITHOUT_QUERY(MULTI)%", rec: func(r *Record) { r.ReqHeader["Multi"] = []string{"a?1", "b"} }, text: "a", json: `"a"`},
		// substitution, PATH(X:Y):Z.
		{format: "%PATH%", rec: func(r *Record) { r.Path = "/p?q=1" }, text: "/p?q=1", json: `"/p?q=1"`},
		{format: "%PATH(NQ)%", rec: func(r *Record) { r.Path = "/p?q=1" }, text: "/p", json: `"/p"`},
		{format: "%PATH(WQ:ORIG)%", text: "-", json: `null`},
		{format: "%PATH(NQ:ORIG_OR_PATH)%", rec: func(r *Record) { r.OriginalPath = "/old?q=2" }, text: "/old", json: `"/old"`},
		{format: "%PATH(WQ:PATH):4%", rec: func(r *Record) { r.OriginalPath = "/old?q=2" }, text: "/api", json: `"/api"`},

		// substitution, RESPONSE_CODE: numeric in typed JSON; 0: no response.
		{format: "%RESPONSE_CODE%", text: "204", json: `204`},
		{format: "%RESPONSE_CODE%", rec: l4, text: "0", json: `0`},
		// substitution, RESPONSE_CODE_DETAILS(X): whitespace becomes "_" unless ALLOW_WHITESPACES.
		{format: "%RESPONSE_CODE_DETAILS%", text: "via_upstream", json: `"via_upstream"`},
		{format: "%RESPONSE_CODE_DETAILS%", rec: func(r *Record) { r.CodeDetails = "upstream reset: connection\ttimeout" }, text: "upstream_reset:_connection_timeout", json: `"upstream_reset:_connection_timeout"`},
		{format: "%RESPONSE_CODE_DETAILS(ALLOW_WHITESPACES)%", rec: func(r *Record) { r.CodeDetails = "upstream reset: \"x\"" }, text: `upstream reset: "x"`, json: `"upstream reset: \"x\""`},
		{format: "%RESPONSE_CODE_DETAILS%", rec: func(r *Record) { r.CodeDetails = "a <b>" }, text: `a_<b>`, json: `"a_\u003cb\u003e"`},
		{format: "%RESPONSE_CODE_DETAILS%", rec: l4, text: "-", json: `null`},
		// substitution, RESPONSE_FLAGS / RESPONSE_FLAGS_LONG (the long name table); none: "-".
		{format: "%RESPONSE_FLAGS%", text: "-", json: `null`},
		{format: "%RESPONSE_FLAGS%", rec: func(r *Record) { r.Flags = FlagRateLimited | FlagNoHealthyUpstream }, text: "RL,UH", json: `"RL,UH"`},
		{format: "%RESPONSE_FLAGS_LONG%", rec: func(r *Record) { r.Flags = FlagRateLimited | FlagNoHealthyUpstream }, text: "RateLimited,NoHealthyUpstream", json: `"RateLimited,NoHealthyUpstream"`},
		{format: "%RESPONSE_FLAGS_LONG%", text: "-", json: `null`},
		// substitution, DURATION and friends: whole milliseconds, numeric in typed JSON; unknown "-".
		{format: "%DURATION%", text: "226", json: `226`},
		{format: "%REQUEST_DURATION%", text: "12", json: `12`},
		{format: "%REQUEST_DURATION%", rec: func(r *Record) { r.RequestDuration = -1 }, text: "-", json: `null`},
		{format: "%RESPONSE_DURATION%", text: "150", json: `150`},
		{format: "%RESPONSE_DURATION%", rec: func(r *Record) { r.ResponseDuration = -1 }, text: "-", json: `null`},
		{format: "%RESPONSE_TX_DURATION%", text: "75", json: `75`},
		{format: "%RESPONSE_TX_DURATION%", rec: func(r *Record) { r.ResponseTxDuration = -1 }, text: "-", json: `null`},
		{format: "%BYTES_RECEIVED%", text: "154", json: `154`},
		{format: "%BYTES_SENT%", text: "0", json: `0`},
		{format: "%BYTES_SENT%", rec: l4, text: "20", json: `20`},
		// substitution, PROTOCOL: TCP/UDP "-".
		{format: "%PROTOCOL%", text: "HTTP/2", json: `"HTTP/2"`},
		{format: "%PROTOCOL%", rec: l4, text: "-", json: `null`},
		{format: "%UPSTREAM_HOST%", text: "tcp://10.0.2.1:80", json: `"tcp://10.0.2.1:80"`},
		{format: "%UPSTREAM_CLUSTER%", text: "locations-svc", json: `"locations-svc"`},
		{format: "%UPSTREAM_TRANSPORT_FAILURE_REASON%", text: "-", json: `null`},
		{format: "%UPSTREAM_TRANSPORT_FAILURE_REASON%", rec: func(r *Record) { r.UpstreamTransportFailureReason = "TLS_error:|268435581:SSL routines" }, text: "TLS_error:|268435581:SSL routines", json: `"TLS_error:|268435581:SSL routines"`},
		{format: "%UPSTREAM_REQUEST_ATTEMPT_COUNT%", text: "1", json: `1`},
		{format: "%UPSTREAM_REQUEST_ATTEMPT_COUNT%", rec: l4, text: "0", json: `0`},
		// substitution, DOWNSTREAM_*_ADDRESS(_WITHOUT_PORT(MASK_PREFIX_LEN)), *_PORT.
		{format: "%DOWNSTREAM_REMOTE_ADDRESS%", text: "10.0.35.28:43210", json: `"10.0.35.28:43210"`},
		{format: "%DOWNSTREAM_REMOTE_ADDRESS%", rec: func(r *Record) { r.DownstreamRemote = netip.MustParseAddrPort("[2001:db8::1]:443") }, text: "[2001:db8::1]:443", json: `"[2001:db8::1]:443"`},
		{format: "%DOWNSTREAM_REMOTE_ADDRESS%", rec: func(r *Record) { r.DownstreamRemote = netip.MustParseAddrPort("[::ffff:10.0.0.1]:80") }, text: "10.0.0.1:80", json: `"10.0.0.1:80"`},
		{format: "%DOWNSTREAM_REMOTE_ADDRESS%", rec: l4, text: "-", json: `null`},
		{format: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", text: "10.0.35.28", json: `"10.0.35.28"`},
		{format: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", rec: func(r *Record) { r.DownstreamRemote = netip.MustParseAddrPort(`[fe80::1%eth"0]:80`) }, text: `fe80::1%eth"0`, json: `"fe80::1%eth\"0"`},
		// substitution: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT(16)% returns 10.1.0.0/16 for client IP 10.1.10.23".
		{format: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT(16)%", rec: func(r *Record) { r.DownstreamRemote = netip.MustParseAddrPort("10.1.10.23:1") }, text: "10.1.0.0/16", json: `"10.1.0.0/16"`},
		// substitution: "(64) returns 2001:db8:1234:5678::/64 for client IP 2001:db8:1234:5678:9abc:def0:1234:5678".
		{format: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT(64)%", rec: func(r *Record) {
			r.DownstreamRemote = netip.MustParseAddrPort("[2001:db8:1234:5678:9abc:def0:1234:5678]:1")
		}, text: "2001:db8:1234:5678::/64", json: `"2001:db8:1234:5678::/64"`},
		{format: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT(64)%", text: "10.0.35.28/32", json: `"10.0.35.28/32"`},
		{format: "%DOWNSTREAM_REMOTE_PORT%", text: "43210", json: `43210`},
		{format: "%DOWNSTREAM_REMOTE_PORT%", rec: l4, text: "-", json: `null`},
		{format: "%DOWNSTREAM_LOCAL_ADDRESS%", text: "10.1.10.23:443", json: `"10.1.10.23:443"`},
		// substitution: "%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT% returns 10.1.10.23 for local IP 10.1.10.23", "(16)" 10.1.0.0/16.
		{format: "%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%", text: "10.1.10.23", json: `"10.1.10.23"`},
		{format: "%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT(16)%", text: "10.1.0.0/16", json: `"10.1.0.0/16"`},
		{format: "%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT(0)%", text: "0.0.0.0/0", json: `"0.0.0.0/0"`},
		{format: "%DOWNSTREAM_LOCAL_PORT%", text: "443", json: `443`},
		{format: "%DOWNSTREAM_LOCAL_PORT%", rec: l4, text: "-", json: `null`},
		{format: "%REQUESTED_SERVER_NAME%", text: "locations.example.com", json: `"locations.example.com"`},
		{format: "%REQUESTED_SERVER_NAME%", rec: l4, text: "-", json: `null`},
		{format: "%ROUTE_NAME%", text: "default/locations", json: `"default/locations"`},
		{format: "%ROUTE_NAME%", rec: l4, text: "-", json: `null`},
		{format: "%TRACE_ID%", text: "4bf92f3577b34da6a3ce929d0e0e4736", json: `"4bf92f3577b34da6a3ce929d0e0e4736"`},
		{format: "%TRACE_ID%", rec: l4, text: "-", json: `null`},
		{format: "%CONNECTION_ID%", text: "42", json: `42`},
		{format: "%HOSTNAME%", text: host, json: string(AppendJSONString(nil, host))},
		// substitution, DYNAMIC_METADATA, for com.test.my_filter: {"test_key": "foo", ...}:
		// (com.test.my_filter:test_key) logs foo; (com.unknown_filter) and
		// (com.test.my_filter:unknown_key) log "-"; (com.test.my_filter:test_key):2 logs "fo"; a
		// structure is not truncated.
		{format: "%DYNAMIC_METADATA(com.test.my_filter:test_key)%", text: "foo", json: `"foo"`},
		{format: "%DYNAMIC_METADATA(com.unknown_filter)%", text: "-", json: `null`},
		{format: "%DYNAMIC_METADATA(com.test.my_filter:unknown_key)%", text: "-", json: `null`},
		{format: "%DYNAMIC_METADATA(com.test.my_filter:test_key):2%", text: "fo", json: `"fo"`},
		{format: "%DYNAMIC_METADATA(com.test.my_filter)%", text: `{"test_key":"foo","other":"bar"}`, json: `{"test_key":"foo","other":"bar"}`},
		{format: "%DYNAMIC_METADATA(com.test.my_filter):2%", text: `{"test_key":"foo","other":"bar"}`, json: `{"test_key":"foo","other":"bar"}`},
		{format: "%DYNAMIC_METADATA(apoxy.ratelimit:decision)%", rec: func(r *Record) {
			r.Metadata = append(r.Metadata, Metadata{"apoxy.ratelimit", "decision", "over_limit"})
		},
			text: "over_limit", json: `"over_limit"`}, // the last entry counts
		{format: "%DYNAMIC_METADATA(apoxy.ratelimit)%", rec: func(r *Record) {
			r.Metadata = append(r.Metadata, Metadata{"apoxy.ratelimit", "decision", "over_limit"})
		},
			text: `{"decision":"over_limit"}`, json: `{"decision":"over_limit"}`},
		{format: "%DYNAMIC_METADATA(apoxy.auth)%", rec: func(r *Record) { r.Metadata = []Metadata{{"apoxy.auth", "identity", "al\"ice\n"}} },
			text: `{"identity":"al\"ice\n"}`, json: `{"identity":"al\"ice\n"}`},
		{format: "%DYNAMIC_METADATA(apoxy.auth:identity)%", rec: func(r *Record) { r.Metadata = []Metadata{{"apoxy.auth", "identity", ""}} }, text: "-", json: `""`},
		{format: "%DYNAMIC_METADATA(com.test.my_filter:test_key)%", rec: l4, text: "-", json: `null`},

		// Apoxy extensions.
		{format: "%DURATION_MS%", text: "226.5", json: `226.5`},
		{format: "%DURATION_MS%", rec: l4, text: "1000", json: `1000`},
		{format: "%UPSTREAM_DURATION_MS%", text: "3.25", json: `3.25`},
		{format: "%UPSTREAM_DURATION_MS%", rec: func(r *Record) { r.UpstreamDuration = 999 }, text: "-", json: `null`},
		{format: "%ERROR%", text: "-", json: `null`},
		{format: "%ERROR%", rec: func(r *Record) { r.Error = "dial tcp 10.0.2.1:80: connect: connection refused" }, text: "dial tcp 10.0.2.1:80: connect: connection refused", json: `"dial tcp 10.0.2.1:80: connect: connection refused"`},

		// Literal text: %% is a percent sign; text around an operator makes a JSON string (usage,
		// "Format Dictionaries": "%DURATION%.0" logs a string).
		{format: "100%%", text: "100%", json: `"100%"`},
		{format: "%DURATION%.0", text: "226.0", json: `"226.0"`},
		{format: "%RESPONSE_CODE% %REQ(X-MISSING)% %DYNAMIC_METADATA(apoxy.ratelimit)%", text: `204 - {"decision":"ok"}`, json: `"204 - {\"decision\":\"ok\"}"`},
		{format: "plain <text> & \"quotes\"", text: `plain <text> & "quotes"`, json: `"plain \u003ctext\u003e \u0026 \"quotes\""`},
		{format: "", json: `""`}, // (a text format "" is the default format: TestDefaultText)
	}
	for _, tc := range cases {
		r := docRecord()
		if tc.rec != nil {
			tc.rec(r)
		}
		if tc.format != "" {
			f, err := ParseText(tc.format)
			if err != nil {
				t.Errorf("ParseText(%q): %v", tc.format, err)
			} else if got := string(f.Append(nil, r)); got != tc.text+"\n" {
				t.Errorf("text %q: %q, want %q", tc.format, got, tc.text+"\n")
			}
		}
		f, err := ParseJSON([]JSONField{{Key: "v", Format: tc.format}}, JSONOptions{})
		if err != nil {
			t.Errorf("ParseJSON(%q): %v", tc.format, err)
			continue
		}
		line := f.Append(nil, r)
		if want := `{"v":` + tc.json + "}\n"; string(line) != want {
			t.Errorf("json %q: %s, want %s", tc.format, line, want)
		}
		if !json.Valid(line) {
			t.Errorf("json %q: invalid JSON %s", tc.format, line)
		}
	}
	// Every supported operator has a case.
	all := ""
	for _, tc := range cases {
		all += tc.format
	}
	for _, name := range operatorNames {
		if !strings.Contains(all, "%"+name+"%") && !strings.Contains(all, "%"+name+"(") {
			t.Errorf("no case for %%%s%%", name)
		}
	}
}

// TestDefaultText: ParseText("") is Envoy's default format, and the documented exchange prints
// the documented line (usage, "Default Format String").
func TestDefaultText(t *testing.T) {
	for _, format := range []string{"", DefaultText, strings.TrimSuffix(DefaultText, "\n")} {
		f, err := ParseText(format)
		if err != nil {
			t.Fatal(err)
		}
		const want = `[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 "10.0.35.28" "nsq2http" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" "tcp://10.0.2.1:80"` + "\n"
		if got := string(f.Append(nil, docRecord())); got != want {
			t.Errorf("%q:\n got %q\nwant %q", format, got, want)
		}
	}
	// A TCP connection: every HTTP value is "-", RESPONSE_CODE 0.
	f, _ := ParseText("")
	r := &Record{Start: time.Date(2016, 4, 15, 20, 17, 0, 0, time.UTC), BytesReceived: 1, BytesSent: 2, Duration: 3 * time.Millisecond, UpstreamHost: "10.0.2.1:80"}
	if got, want := string(f.Append(nil, r)), `[2016-04-15T20:17:00.000Z] "- - -" 0 - 1 2 3 - "-" "-" "-" "-" "10.0.2.1:80"`+"\n"; got != want {
		t.Errorf("TCP:\n got %q\nwant %q", got, want)
	}
}

// TestEnvoyJSONExample: usage, "Format Dictionaries": protocol, duration and a custom header;
// typed, the duration is the number 123 and the header a string.
func TestEnvoyJSONExample(t *testing.T) {
	f, err := ParseJSON(JSONFieldsFromMap(map[string]string{
		"protocol":         "%PROTOCOL%",
		"duration":         "%DURATION%",
		"my_custom_header": "%REQ(MY_CUSTOM_HEADER)%",
	}), JSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := &Record{Protocol: "HTTP/1.1", Duration: 123 * time.Millisecond, ReqHeader: http.Header{"My_custom_header": {"value_of_MY_CUSTOM_HEADER"}}}
	want := `{"duration":123,"my_custom_header":"value_of_MY_CUSTOM_HEADER","protocol":"HTTP/1.1"}` + "\n"
	if got := string(f.Append(nil, r)); got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	// The substitution_format_string proto's json_format example: status is a number.
	f, _ = ParseJSON([]JSONField{{Key: "status", Format: "%RESPONSE_CODE%"}}, JSONOptions{})
	if got := string(f.Append(nil, &Record{Status: 500})); got != `{"status":500}`+"\n" {
		t.Errorf("got %s", got)
	}
}

// TestFloatMillis: the _MS operators write what strconv writes for the float the gateway's
// line always had.
func TestFloatMillis(t *testing.T) {
	us := []int64{0, 1, 9, 10, 100, 999, 1000, 1001, 1010, 1100, 12345, 999999, 1 << 40, 1<<50 - 1, 1 << 50, 1<<53 + 1, -1, -1500, -(1 << 51)}
	for i := int64(1); i < 3000000; i = i*3 + i%7 {
		us = append(us, i, -i)
	}
	for _, u := range us {
		d := time.Duration(u) * time.Microsecond
		want := strconv.AppendFloat(nil, float64(d.Microseconds())/1000, 'f', -1, 64)
		if got := appendFloatMillis(nil, d); string(got) != string(want) {
			t.Errorf("%dµs: %s, want %s", u, got, want)
		}
	}
}
