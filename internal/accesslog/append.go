package accesslog

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// mode is where a value goes.
type mode uint8

const (
	// modeText: a text line; values as they are, control characters escaped.
	modeText mode = iota
	// modeStr: inside a JSON string; values JSON-escaped.
	modeStr
	// modeJSON: a JSON value of its own; strings quoted, numbers and objects bare.
	modeJSON
)

// appendEsc appends s escaped for m (no quotes).
func appendEsc(b []byte, s string, m mode) []byte {
	if m == modeText {
		return appendTextContent(b, s)
	}
	return appendJSONContent(b, s)
}

// escapeTail escapes, for m, what was appended to b from start on: for values rendered in
// place (a time, an address, a metadata object inside a JSON string). The escaped copy is
// appended after the raw bytes (which it reads; a reallocation leaves them intact in the old
// array) and moved down over them.
func escapeTail(b []byte, start int, m mode) []byte {
	raw := b[start:]
	safe := textSafe
	if m != modeText {
		safe = jsonSafe
	}
	i := 0
	for i < len(raw) && safe(raw[i]) {
		i++
	}
	if i == len(raw) {
		return b
	}
	mid := len(b)
	if m == modeText {
		b = appendTextContent(b, raw[i:])
	} else {
		b = appendJSONContent(b, raw[i:])
	}
	n := copy(b[start+i:], b[mid:])
	return b[:start+i+n]
}

// truncate cuts s to at most n bytes, backing off to the start of a UTF-8 sequence the cut
// would split (invalid bytes are cut where they fall).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for k := n; k >= 0 && n-k < utf8.UTFMax; k-- {
		if utf8.RuneStart(s[k]) {
			if _, size := utf8.DecodeRuneInString(s[k:]); size > 1 && size > n-k {
				return s[:k]
			}
			break
		}
	}
	return s[:n]
}

// appendString appends a string value (missing when ""): quoted in modeJSON.
func appendString(b []byte, s string, m mode, max int) ([]byte, bool) {
	if s == "" {
		return b, true
	}
	if max > 0 {
		s = truncate(s, max)
	}
	switch m {
	case modeJSON:
		b = append(b, '"')
		b = appendJSONContent(b, s)
		return append(b, '"'), false
	case modeStr:
		return appendJSONContent(b, s), false
	}
	return appendTextContent(b, s), false
}

func appendInt(b []byte, v int64) ([]byte, bool) { return strconv.AppendInt(b, v, 10), false }

// appendMillis appends d in whole milliseconds, as Envoy prints durations; negative: missing.
func appendMillis(b []byte, d time.Duration) ([]byte, bool) {
	if d < 0 {
		return b, true
	}
	return strconv.AppendInt(b, d.Milliseconds(), 10), false
}

// appendFloatMillis appends d in milliseconds with microsecond precision ("1.25"): what
// strconv.AppendFloat(float64(d.Microseconds())/1000, 'f', -1, 64) writes (the gateway's
// line always had it), at a fraction of the cost. Below 2^50 µs (35 years) the float is the
// nearest to the decimal ms.µs, so the shortest form that reads back is that decimal with its
// trailing zeros cut.
func appendFloatMillis(b []byte, d time.Duration) []byte {
	us := d.Microseconds()
	if us >= 1<<50 || us <= -1<<50 {
		return strconv.AppendFloat(b, float64(us)/1000, 'f', -1, 64)
	}
	if us < 0 {
		b = append(b, '-')
		us = -us
	}
	b = strconv.AppendInt(b, us/1000, 10)
	frac := int(us % 1000)
	if frac == 0 {
		return b
	}
	digits := 3
	for frac%10 == 0 {
		frac /= 10
		digits--
	}
	b = append(b, '.')
	return appendPadded(b, frac, digits)
}

// append appends o's value for r in mode m. A missing value appends nothing (the caller writes
// "-" or null); empty reports a value that is there but empty ("", RESPONSE_CODE 0), which
// EmptyOmit leaves out.
func (o *op) append(b []byte, r *Record, m mode) ([]byte, bool) {
	switch o.kind {
	case opStartTime:
		if m == modeJSON {
			b = append(b, '"')
		}
		start := len(b)
		b = o.tf.appendTime(b, r.Start)
		if m != modeText && o.tf.jsonUnsafe {
			b = escapeTail(b, start, m)
		}
		if m == modeJSON {
			b = append(b, '"')
		}
		return b, false
	case opHeader:
		return o.appendHeader(b, r, m)
	case opResponseCode:
		return strconv.AppendInt(b, int64(r.Status), 10), r.Status == 0
	case opCodeDetails:
		if r.CodeDetails == "" || o.allowWS || strings.IndexAny(r.CodeDetails, " \t\n\r\v\f") < 0 {
			return appendString(b, r.CodeDetails, m, 0)
		}
		if m == modeJSON {
			b = append(b, '"')
		}
		start := len(b)
		b = append(b, r.CodeDetails...)
		for i := start; i < len(b); i++ {
			switch b[i] {
			case ' ', '\t', '\n', '\r', '\v', '\f':
				b[i] = '_'
			}
		}
		b = escapeTail(b, start, m)
		if m == modeJSON {
			b = append(b, '"')
		}
		return b, false
	case opFlags, opFlagsLong:
		if r.Flags == 0 {
			return b, true
		}
		if m == modeJSON {
			b = append(b, '"')
		}
		b = r.Flags.appendNames(b, o.kind == opFlagsLong)
		if m == modeJSON {
			b = append(b, '"')
		}
		return b, false
	case opDuration:
		return appendMillis(b, r.Duration)
	case opRequestDuration:
		return appendMillis(b, r.RequestDuration)
	case opResponseDuration:
		return appendMillis(b, r.ResponseDuration)
	case opResponseTxDuration:
		return appendMillis(b, r.ResponseTxDuration)
	case opBytesReceived:
		return appendInt(b, r.BytesReceived)
	case opBytesSent:
		return appendInt(b, r.BytesSent)
	case opProtocol:
		return appendString(b, r.Protocol, m, 0)
	case opUpstreamHost:
		return appendString(b, r.UpstreamHost, m, 0)
	case opUpstreamCluster:
		return appendString(b, r.UpstreamCluster, m, 0)
	case opUpstreamTransportFailure:
		return appendString(b, r.UpstreamTransportFailureReason, m, 0)
	case opUpstreamAttempts:
		return appendInt(b, int64(r.UpstreamAttempts))
	case opRemoteAddr:
		return appendAddr(b, r.DownstreamRemote, true, -1, m)
	case opRemoteAddrNoPort:
		return appendAddr(b, r.DownstreamRemote, false, o.mask, m)
	case opRemotePort:
		return appendPort(b, r.DownstreamRemote)
	case opLocalAddr:
		return appendAddr(b, r.DownstreamLocal, true, -1, m)
	case opLocalAddrNoPort:
		return appendAddr(b, r.DownstreamLocal, false, o.mask, m)
	case opLocalPort:
		return appendPort(b, r.DownstreamLocal)
	case opServerName:
		return appendString(b, r.ServerName, m, 0)
	case opRouteName:
		return appendString(b, r.RouteName, m, 0)
	case opTraceID:
		return appendString(b, r.TraceID, m, 0)
	case opConnectionID:
		return strconv.AppendUint(b, r.ConnectionID, 10), false
	case opHostname:
		return appendString(b, o.str, m, 0)
	case opMetadata:
		return o.appendMetadata(b, r, m)
	case opDurationMS:
		return appendFloatMillis(b, r.Duration), false
	case opUpstreamDurationMS:
		if r.UpstreamDuration < time.Microsecond {
			return b, true
		}
		return appendFloatMillis(b, r.UpstreamDuration), false
	case opError:
		return appendString(b, r.Error, m, 0)
	}
	return b, true
}

// appendHeader appends the first of the operator's headers that is there: its values joined
// with ",", cut at the query (REQ_WITHOUT_QUERY, PATH(NQ)) and at the max length.
func (o *op) appendHeader(b []byte, r *Record, m mode) ([]byte, bool) {
	for i := range o.hdr {
		h := &o.hdr[i]
		var one string
		var many []string
		switch h.src {
		case srcReqMap:
			many = r.ReqHeader[h.key]
		case srcRespMap:
			many = r.RespHeader[h.key]
		case srcTrailerMap:
			many = r.Trailer[h.key]
		case srcMethod:
			one = r.Method
		case srcPath:
			one = r.Path
		case srcAuthority:
			one = r.Authority
		case srcScheme:
			one = r.Scheme
		case srcOriginalPath:
			one = r.OriginalPath
		case srcStatus: // %RESP(:STATUS)%: the status as a string, written in place
			if r.Status == 0 {
				continue
			}
			if m == modeJSON {
				b = append(b, '"')
			}
			start := len(b)
			b = strconv.AppendInt(b, int64(r.Status), 10)
			if o.max > 0 && len(b)-start > o.max {
				b = b[:start+o.max]
			}
			if m == modeJSON {
				b = append(b, '"')
			}
			return b, false
		}
		if one == "" && len(many) == 0 {
			continue // not there: the fallback, if any
		}
		if o.max == 0 && len(many) <= 1 { // the usual case: one value, whole
			if many != nil {
				one = many[0]
			}
			if o.noQuery {
				if k := strings.IndexByte(one, '?'); k >= 0 {
					one = one[:k]
				}
			}
			if m == modeJSON {
				b = append(b, '"')
				b = appendJSONContent(b, one)
				return append(b, '"'), one == ""
			}
			return appendEsc(b, one, m), one == ""
		}
		if m == modeJSON {
			b = append(b, '"')
		}
		start := len(b)
		budget := o.max
		if budget == 0 {
			budget = -1
		}
		if many == nil {
			b, _ = o.appendPart(b, one, m, &budget)
		} else {
			for j, v := range many {
				if j > 0 {
					if budget == 0 {
						break
					}
					b = append(b, ',')
					if budget > 0 {
						budget--
					}
				}
				var stop bool
				if b, stop = o.appendPart(b, v, m, &budget); stop {
					break
				}
			}
		}
		empty := len(b) == start
		if m == modeJSON {
			b = append(b, '"')
		}
		return b, empty
	}
	return b, true
}

// appendPart appends one value of a header within the remaining budget (-1: no limit); stop
// says nothing more may follow (the query started, or the budget ran out).
func (o *op) appendPart(b []byte, s string, m mode, budget *int) ([]byte, bool) {
	stop := false
	if o.noQuery {
		if k := strings.IndexByte(s, '?'); k >= 0 {
			s, stop = s[:k], true
		}
	}
	if *budget >= 0 {
		if len(s) >= *budget {
			s, stop = truncate(s, *budget), true
		}
		*budget -= len(s)
	}
	return appendEsc(b, s, m), stop
}

// appendAddr appends an address, "ip:port" or the IP alone (masked to a prefix with mask >= 0,
// as "10.1.0.0/16"); IPv4-mapped IPv6 addresses print as IPv4. Invalid: missing.
func appendAddr(b []byte, ap netip.AddrPort, port bool, mask int, m mode) ([]byte, bool) {
	if !ap.IsValid() {
		return b, true
	}
	a := ap.Addr().Unmap()
	if m == modeJSON {
		b = append(b, '"')
	}
	start := len(b)
	switch {
	case port:
		b = netip.AddrPortFrom(a, ap.Port()).AppendTo(b)
	case mask >= 0:
		p, _ := a.WithZone("").Prefix(min(mask, a.BitLen()))
		b = p.AppendTo(b)
	default:
		b = a.AppendTo(b)
	}
	if a.Zone() != "" { // a zone is free text
		b = escapeTail(b, start, m)
	}
	if m == modeJSON {
		b = append(b, '"')
	}
	return b, false
}

func appendPort(b []byte, ap netip.AddrPort) ([]byte, bool) {
	if !ap.IsValid() {
		return b, true
	}
	return strconv.AppendUint(b, uint64(ap.Port()), 10), false
}

// appendMetadata appends a metadata value (NAMESPACE:KEY; the last entry counts) or a whole
// namespace as a JSON object of its keys (not truncated: Envoy leaves structures whole).
func (o *op) appendMetadata(b []byte, r *Record, m mode) ([]byte, bool) {
	if o.key != "" {
		for i := len(r.Metadata) - 1; i >= 0; i-- {
			if e := &r.Metadata[i]; e.Namespace == o.ns && e.Key == o.key {
				if e.Value == "" && m == modeJSON {
					return append(b, '"', '"'), true
				}
				return appendString(b, e.Value, m, o.max)
			}
		}
		return b, true
	}
	start := len(b)
	for i := range r.Metadata {
		e := &r.Metadata[i]
		if e.Namespace != o.ns || shadowed(r.Metadata[i+1:], e) {
			continue
		}
		if len(b) == start {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		b = AppendJSONString(b, e.Key)
		b = append(b, ':')
		b = AppendJSONString(b, e.Value)
	}
	if len(b) == start {
		return b, true
	}
	b = append(b, '}')
	if m == modeStr { // JSON text inside a JSON string: escaped once more
		b = escapeTail(b, start, m)
	}
	return b, false
}

// shadowed reports whether a later entry sets e's key again.
func shadowed(later []Metadata, e *Metadata) bool {
	for i := range later {
		if later[i].Namespace == e.Namespace && later[i].Key == e.Key {
			return true
		}
	}
	return false
}
