package accesslog

import (
	"slices"
	"strconv"
	"strings"
)

// DefaultText is Envoy's default access-log format, what ParseText("") compiles:
//
//	[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 "10.0.35.28" "nsq2http" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" "tcp://10.0.2.1:80"
const DefaultText = `[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" ` +
	`%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% ` +
	`%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" ` +
	`"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"` + "\n"

// Format is a compiled access-log format, text or JSON. It is immutable and safe for
// concurrent use: compile it once per configuration, then Append a line per exchange.
type Format struct {
	json   bool
	pieces []piece     // text
	fields []jsonField // JSON
	heads  [3][]string // headers read: request, response, trailers
}

// Empty says what a JSON field holds when its value is empty: missing (a header not sent, a
// field not set), or, for EmptyOmit, also an empty string or RESPONSE_CODE 0.
type Empty uint8

const (
	// EmptyNull writes null for a missing value (and "" for an empty string), as Envoy does.
	EmptyNull Empty = iota
	// EmptyOmit leaves the key out when its value is missing or empty (Envoy's
	// omit_empty_values); RESPONSE_CODE 0 (no response) counts as empty.
	EmptyOmit
	// EmptyString writes "" for a missing value.
	EmptyString
)

// JSONField is one key of a JSON line and the format of its value. A format that is exactly
// one operator keeps the operator's type (a number for RESPONSE_CODE, DURATION, BYTES_*...,
// an object for DYNAMIC_METADATA(NAMESPACE)); any other format is a string.
type JSONField struct {
	Key    string
	Format string
	// Empty says what the field holds when its value is empty (zero: null, as Envoy).
	Empty Empty
}

// JSONOptions are a JSON format's options.
type JSONOptions struct {
	// OmitEmpty leaves out every field whose value is missing or empty (Envoy's
	// omit_empty_values): it makes each EmptyNull field EmptyOmit.
	OmitEmpty bool
}

const keyArrLen = 32

// jsonField is a compiled JSONField.
type jsonField struct {
	key string // `,"key":`, escaped (the first field written drops the comma)
	// keyArr holds key when it fits, for a fixed-size copy (a few moves; a string of any
	// length costs a call to memmove, a visible share of a line of short fields).
	keyArr [keyArrLen]byte
	empty  Empty
	op     *op     // a format of one operator: a typed value
	pieces []piece // otherwise: the parts of a string
}

// ParseText compiles an Envoy format string; "" is Envoy's default format (DefaultText).
//
// Every line ends in exactly one newline: trailing newlines of the format are folded into the
// one Append always writes (Envoy prints a format's own newline only, and one it lacks runs
// lines together; the gateway's log is one line per exchange). For the same reason a line
// break inside the format is an error, and control characters in values are escaped.
func ParseText(format string) (*Format, error) {
	if format == "" {
		format = DefaultText
	}
	format = strings.TrimRight(format, "\n")
	format = strings.TrimSuffix(format, "\r")
	if k := strings.IndexAny(format, "\r\n"); k >= 0 {
		return nil, &Error{Offset: k, Msg: "a line break at " + strconv.Itoa(k) + " would split the line: only a trailing newline is allowed"}
	}
	f := &Format{}
	p := &parser{s: format, heads: &f.heads}
	if err := p.parse(); err != nil {
		return nil, err
	}
	f.pieces = p.pcs
	return f, nil
}

// ParseJSON compiles a JSON format: one object per line with the fields in the order given
// (Envoy sorts its keys; a caller holding a map can use JSONFieldsFromMap for that order).
func ParseJSON(fields []JSONField, opts JSONOptions) (*Format, error) {
	f := &Format{json: true}
	seen := make(map[string]bool, len(fields))
	for _, fl := range fields {
		if seen[fl.Key] {
			return nil, &Error{Key: fl.Key, JSON: true, Offset: -1, Msg: "duplicate key"}
		}
		seen[fl.Key] = true
		if fl.Empty > EmptyString {
			return nil, &Error{Key: fl.Key, JSON: true, Offset: -1, Msg: "unknown Empty value " + strconv.Itoa(int(fl.Empty))}
		}
		p := &parser{s: fl.Format, json: true, heads: &f.heads}
		if err := p.parse(); err != nil {
			err.Key, err.JSON = fl.Key, true
			return nil, err
		}
		jf := jsonField{key: "," + string(AppendJSONString(nil, fl.Key)) + ":", empty: fl.Empty}
		copy(jf.keyArr[:], jf.key)
		if opts.OmitEmpty && jf.empty == EmptyNull {
			jf.empty = EmptyOmit
		}
		if len(p.pcs) == 1 && p.pcs[0].op != nil {
			jf.op = p.pcs[0].op
		} else {
			for _, pc := range p.pcs {
				if pc.op == nil {
					pc.lit = string(appendJSONContent(nil, pc.lit))
				}
				jf.pieces = append(jf.pieces, pc)
			}
		}
		f.fields = append(f.fields, jf)
	}
	return f, nil
}

// JSONFieldsFromMap returns the fields of a key -> format map sorted by key, as Envoy orders
// them, so that a configuration held in a map gives the same line every time.
func JSONFieldsFromMap(m map[string]string) []JSONField {
	fields := make([]JSONField, 0, len(m))
	for k, v := range m {
		fields = append(fields, JSONField{Key: k, Format: v})
	}
	slices.SortFunc(fields, func(a, b JSONField) int { return strings.Compare(a.Key, b.Key) })
	return fields
}

// DefaultJSON is the gateway's own line, field for field what it wrote before formats were
// configurable: time (start, UTC, microseconds), request_id, client_ip, method, host, path
// (without the query, before any rewrite), protocol, status (left out for none), bytes_received,
// bytes_sent, duration_ms, then, each left out when empty, upstream_ms, route, backend,
// upstream_address, error, user_agent, ratelimit and auth (the MetaRateLimit and MetaAuth
// decisions), function and function_error (MetaFunction's revision and error) and
// response_flags. Compile it with ParseJSON(DefaultJSON(), JSONOptions{}).
func DefaultJSON() []JSONField {
	return []JSONField{
		{Key: "time", Format: "%START_TIME(%Y-%m-%dT%H:%M:%S.%6fZ)%"},
		{Key: "request_id", Format: "%REQ(X-REQUEST-ID)%", Empty: EmptyString},
		{Key: "client_ip", Format: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", Empty: EmptyString},
		{Key: "method", Format: "%REQ(:METHOD)%", Empty: EmptyString},
		{Key: "host", Format: "%REQ(:AUTHORITY)%", Empty: EmptyString},
		{Key: "path", Format: "%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)%", Empty: EmptyString},
		{Key: "protocol", Format: "%PROTOCOL%", Empty: EmptyString},
		{Key: "status", Format: "%RESPONSE_CODE%", Empty: EmptyOmit},
		{Key: "bytes_received", Format: "%BYTES_RECEIVED%"},
		{Key: "bytes_sent", Format: "%BYTES_SENT%"},
		{Key: "duration_ms", Format: "%DURATION_MS%"},
		{Key: "upstream_ms", Format: "%UPSTREAM_DURATION_MS%", Empty: EmptyOmit},
		{Key: "route", Format: "%ROUTE_NAME%", Empty: EmptyOmit},
		{Key: "backend", Format: "%UPSTREAM_CLUSTER%", Empty: EmptyOmit},
		{Key: "upstream_address", Format: "%UPSTREAM_HOST%", Empty: EmptyOmit},
		{Key: "error", Format: "%ERROR%", Empty: EmptyOmit},
		{Key: "user_agent", Format: "%REQ(USER-AGENT)%", Empty: EmptyOmit},
		{Key: "ratelimit", Format: "%DYNAMIC_METADATA(" + MetaRateLimit + ":" + MetaDecision + ")%", Empty: EmptyOmit},
		{Key: "auth", Format: "%DYNAMIC_METADATA(" + MetaAuth + ":" + MetaDecision + ")%", Empty: EmptyOmit},
		{Key: "function", Format: "%DYNAMIC_METADATA(" + MetaFunction + ":" + MetaRevision + ")%", Empty: EmptyOmit},
		{Key: "function_error", Format: "%DYNAMIC_METADATA(" + MetaFunction + ":" + MetaError + ")%", Empty: EmptyOmit},
		{Key: "response_flags", Format: "%RESPONSE_FLAGS%", Empty: EmptyOmit},
	}
}

// Headers says which headers the format reads, by canonical name (":protocol" included), so a
// caller can skip keeping the others: request headers, response headers, trailers.
func (f *Format) Headers() (req, resp, trailer []string) {
	return slices.Clone(f.heads[0]), slices.Clone(f.heads[1]), slices.Clone(f.heads[2])
}

// JSON reports whether f writes JSON lines.
func (f *Format) JSON() bool { return f.json }

// Append appends r's line to b: the text line, or one JSON object, ending in one "\n". It
// allocates only to grow b, and once a second per START_TIME operator (the second's cached
// rendering).
func (f *Format) Append(b []byte, r *Record) []byte {
	if !f.json {
		b = appendPieces(b, f.pieces, r, modeText)
		return append(b, '\n')
	}
	b = append(b, '{')
	skip := 1 // the first field written has no comma
	for i := range f.fields {
		fl := &f.fields[i]
		mark := len(b)
		if n := len(fl.key); n <= keyArrLen && cap(b)-mark >= keyArrLen {
			b = b[:mark+keyArrLen]
			*(*[keyArrLen]byte)(b[mark:]) = fl.keyArr
			if skip == 1 {
				copy(b[mark:], b[mark+1:mark+n])
			}
			b = b[:mark+n-skip]
		} else {
			b = append(b, fl.key[skip:]...)
		}
		if fl.op != nil {
			start := len(b)
			var empty bool
			b, empty = fl.op.append(b, r, modeJSON)
			switch {
			case len(b) == start: // missing
				switch fl.empty {
				case EmptyOmit:
					b = b[:mark]
					continue
				case EmptyString:
					b = append(b, '"', '"')
				default:
					b = append(b, "null"...)
				}
			case empty && fl.empty == EmptyOmit:
				b = b[:mark]
				continue
			}
		} else {
			b = append(b, '"')
			start := len(b)
			b = appendPieces(b, fl.pieces, r, modeStr)
			if len(b) == start && fl.empty == EmptyOmit {
				b = b[:mark]
				continue
			}
			b = append(b, '"')
		}
		skip = 0
	}
	return append(b, '}', '\n')
}

// appendPieces appends literals and operator values; a missing value prints "-".
func appendPieces(b []byte, pcs []piece, r *Record, m mode) []byte {
	for i := range pcs {
		pc := &pcs[i]
		if pc.op == nil {
			b = append(b, pc.lit...)
			continue
		}
		start := len(b)
		b, _ = pc.op.append(b, r, m)
		if len(b) == start {
			b = append(b, '-')
		}
	}
	return b
}
