package accesslog

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// Error is a format that does not compile: which format (a JSON field's key, or the text
// format), where in it, and why.
type Error struct {
	// Key is the JSON field whose format is wrong ("" for a text format, see JSON).
	Key string
	// JSON says the format is a JSON field's (named by Key).
	JSON bool
	// Offset is the byte offset of the offending token in the format string; -1 when the
	// error is about the field as a whole.
	Offset int
	// Msg says what is wrong, naming the token.
	Msg string
}

func (e *Error) Error() string {
	if e.JSON {
		return "accesslog: json[" + strconv.Quote(e.Key) + "]: " + e.Msg
	}
	return "accesslog: format: " + e.Msg
}

// piece is one part of a format: literal text or an operator.
type piece struct {
	lit string // the literal, already escaped for where it goes (text or JSON string)
	op  *op
}

// op is one compiled operator.
type op struct {
	kind opKind
	max  int // ":Z" max length in bytes; 0: none
	// header operators: the header and its fallback ("X?Y"), and whether to cut the query.
	hdr     []hdrRef
	noQuery bool
	tf      *timeFormat // START_TIME
	mask    int         // *_ADDRESS_WITHOUT_PORT(MASK_PREFIX_LEN); -1: none
	ns, key string      // DYNAMIC_METADATA; key "": the whole namespace
	str     string      // HOSTNAME: the host's name, read once
	allowWS bool        // RESPONSE_CODE_DETAILS(ALLOW_WHITESPACES)
}

// hdrRef is one header an operator reads: a header map entry or a Record field.
type hdrRef struct {
	src hdrSrc
	key string // canonical header name (src hdrMap*)
}

type hdrSrc uint8

const (
	srcReqMap hdrSrc = iota
	srcRespMap
	srcTrailerMap
	srcMethod
	srcPath
	srcAuthority
	srcScheme
	srcOriginalPath
	srcStatus
)

// parser compiles one format string.
type parser struct {
	s     string
	json  bool // the format is a JSON value's (literals are JSON-escaped)
	pcs   []piece
	heads *[3][]string // headers read, per header map
}

func (p *parser) errf(off int, format string, args ...any) *Error {
	return &Error{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// parse splits p.s into literals and operators.
func (p *parser) parse() *Error {
	s := p.s
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			p.pcs = append(p.pcs, piece{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		if s[i] != '%' {
			j := strings.IndexByte(s[i:], '%')
			if j < 0 {
				j = len(s) - i
			}
			lit.WriteString(s[i : i+j])
			i += j
			continue
		}
		if i+1 < len(s) && s[i+1] == '%' {
			lit.WriteByte('%')
			i += 2
			continue
		}
		o, end, err := p.operator(i)
		if err != nil {
			return err
		}
		flush()
		p.pcs = append(p.pcs, piece{op: o})
		i = end
	}
	flush()
	return nil
}

func isNameByte(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_'
}

// operator parses the operator starting at s[i] == '%': %NAME%, %NAME(ARG)% or %NAME(ARG):Z%.
func (p *parser) operator(i int) (*op, int, *Error) {
	s := p.s
	j := i + 1
	for j < len(s) && isNameByte(s[j]) {
		j++
	}
	name := s[i+1 : j]
	if name == "" {
		if j == len(s) {
			return nil, 0, p.errf(i, "unterminated operator starting at %d (write %%%% for a literal percent)", i)
		}
		return nil, 0, p.errf(i, "%q at %d starts no operator (write %%%% for a literal percent)", s[i:j+1], i)
	}
	if j == len(s) {
		return nil, 0, p.errf(i, "unterminated operator starting at %d", i)
	}
	var arg string
	hasArg, argAt, maxLen, end := false, 0, 0, 0
	switch s[j] {
	case '%':
		end = j + 1
	case '(':
		// The argument ends at the first ")" followed by "%" or ":" (a START_TIME format may
		// hold parentheses and percent signs of its own).
		k := j + 1
		for ; k < len(s); k++ {
			if s[k] == ')' && k+1 < len(s) && (s[k+1] == '%' || s[k+1] == ':') {
				break
			}
		}
		if k >= len(s) {
			return nil, 0, p.errf(i, "unterminated operator starting at %d", i)
		}
		hasArg, argAt, arg = true, j+1, s[j+1:k]
		if s[k+1] == '%' {
			end = k + 2
			break
		}
		m := strings.IndexByte(s[k+2:], '%')
		if m < 0 {
			return nil, 0, p.errf(i, "unterminated operator starting at %d", i)
		}
		end = k + 2 + m + 1
		z, err := strconv.Atoi(s[k+2 : k+2+m])
		if err != nil || z <= 0 || strings.TrimLeft(s[k+2:k+2+m], "0123456789") != "" {
			return nil, 0, p.errf(i, "%q at %d: max length must be a positive integer", s[i:end], i)
		}
		maxLen = z
	default:
		return nil, 0, p.errf(i, "%q at %d: expected %q or %q after the operator's name", s[i:j+1], i, "%", "(")
	}
	tok := s[i:end]
	spec, ok := operators[name]
	if !ok {
		if envoyOnly[name] {
			return nil, 0, p.errf(i, "operator %q at %d is Envoy's, but the gateway has nothing to fill it with (known: %s)", tok, i, knownList)
		}
		return nil, 0, p.errf(i, "unknown operator %q at %d (known: %s)", tok, i, knownList)
	}
	switch {
	case spec.arg == argNone && hasArg:
		return nil, 0, p.errf(i, "%q at %d: %s takes no argument", tok, i, name)
	case spec.arg == argRequired && !hasArg:
		return nil, 0, p.errf(i, "%q at %d: %s needs an argument: %%%s(...)%%", tok, i, name, name)
	case maxLen > 0 && !spec.trunc:
		return nil, 0, p.errf(i, "%q at %d: %s takes no max length", tok, i, name)
	}
	o := &op{kind: spec.kind, max: maxLen, mask: -1}
	if err := p.args(o, spec, name, tok, i, arg, argAt); err != nil {
		return nil, 0, err
	}
	return o, end, nil
}

// args compiles an operator's argument.
func (p *parser) args(o *op, spec opSpec, name, tok string, at int, arg string, argAt int) *Error {
	switch o.kind {
	case opStartTime:
		f := arg
		if f == "" {
			f = defaultTimeFormat
		}
		tf, off, err := parseTimeFormat(f)
		if err != nil {
			if arg == "" {
				off = 0
			}
			return p.errf(argAt+off, "%q at %d: %v", tok, at, err)
		}
		o.tf = tf
	case opHeader:
		o.noQuery = spec.noQuery
		if spec.headers == hdrPath {
			return p.pathArgs(o, tok, at, arg)
		}
		names := strings.Split(arg, "?")
		if len(names) > 2 {
			return p.errf(at, "%q at %d: at most one fallback header (X?Y)", tok, at)
		}
		for n, h := range names {
			if h == "" {
				if n == 0 {
					return p.errf(at, "%q at %d: header name required", tok, at)
				}
				return p.errf(at, "%q at %d: fallback header name required after %q", tok, at, "?")
			}
			ref, err := headerRef(spec.headers, h)
			if err != "" {
				return p.errf(at, "%q at %d: %s", tok, at, err)
			}
			o.hdr = append(o.hdr, ref)
			if ref.src <= srcTrailerMap && p.heads != nil {
				hs := &p.heads[ref.src]
				if !contains(*hs, ref.key) {
					*hs = append(*hs, ref.key)
				}
			}
		}
	case opCodeDetails:
		switch arg {
		case "":
		case "ALLOW_WHITESPACES":
			o.allowWS = true
		default:
			return p.errf(at, "%q at %d: the argument may only be ALLOW_WHITESPACES", tok, at)
		}
	case opRemoteAddrNoPort, opLocalAddrNoPort:
		if arg != "" {
			m, err := strconv.Atoi(arg)
			if err != nil || m < 0 || m > 128 || strings.TrimLeft(arg, "0123456789") != "" {
				return p.errf(at, "%q at %d: the mask prefix length must be an integer from 0 to 128", tok, at)
			}
			o.mask = m
		}
	case opMetadata:
		parts := strings.Split(arg, ":")
		switch {
		case parts[0] == "":
			return p.errf(at, "%q at %d: metadata namespace required", tok, at)
		case len(parts) > 2:
			return p.errf(at, "%q at %d: nested metadata keys cannot match: the gateway's metadata values are strings (use NAMESPACE or NAMESPACE:KEY)", tok, at)
		case len(parts) == 2 && parts[1] == "":
			return p.errf(at, "%q at %d: metadata key required after %q", tok, at, ":")
		}
		o.ns = parts[0]
		if len(parts) == 2 {
			o.key = parts[1]
		}
	case opHostname:
		o.str, _ = os.Hostname()
	}
	return nil
}

// pathArgs compiles PATH(X:Y): X is WQ (with the query, the default) or NQ, Y is ORIG, PATH or
// ORIG_OR_PATH (the default).
func (p *parser) pathArgs(o *op, tok string, at int, arg string) *Error {
	x, y, _ := strings.Cut(arg, ":")
	switch x {
	case "", "WQ":
	case "NQ":
		o.noQuery = true
	default:
		return p.errf(at, "%q at %d: the first argument must be WQ or NQ", tok, at)
	}
	switch y {
	case "", "ORIG_OR_PATH":
		o.hdr = []hdrRef{{src: srcOriginalPath}, {src: srcPath}}
	case "ORIG":
		o.hdr = []hdrRef{{src: srcOriginalPath}}
	case "PATH":
		o.hdr = []hdrRef{{src: srcPath}}
	default:
		return p.errf(at, "%q at %d: the second argument must be ORIG, PATH or ORIG_OR_PATH", tok, at)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// headerRef resolves a header name for a header set: pseudo-headers and the few names the
// Record carries as fields, else the canonical key of the header map.
func headerRef(set headerSet, name string) (hdrRef, string) {
	lower := strings.ToLower(name)
	if strings.HasPrefix(name, ":") {
		switch {
		case set == hdrReq && lower == ":method":
			return hdrRef{src: srcMethod}, ""
		case set == hdrReq && lower == ":path":
			return hdrRef{src: srcPath}, ""
		case set == hdrReq && lower == ":authority":
			return hdrRef{src: srcAuthority}, ""
		case set == hdrReq && lower == ":scheme":
			return hdrRef{src: srcScheme}, ""
		case set == hdrReq && lower == ":protocol":
			// net/http's HTTP/2 server keeps an extended CONNECT's :protocol in the header map.
			return hdrRef{src: srcReqMap, key: ":protocol"}, ""
		case set == hdrResp && lower == ":status":
			return hdrRef{src: srcStatus}, ""
		case set == hdrReq:
			return hdrRef{}, fmt.Sprintf("unknown pseudo-header %q (known: :method, :path, :authority, :scheme, :protocol)", name)
		case set == hdrResp:
			return hdrRef{}, fmt.Sprintf("unknown pseudo-header %q (known: :status)", name)
		default:
			return hdrRef{}, fmt.Sprintf("trailers have no pseudo-header %q", name)
		}
	}
	for i := 0; i < len(name); i++ {
		if !isTokenByte(name[i]) {
			return hdrRef{}, fmt.Sprintf("invalid header name %q", name)
		}
	}
	if set == hdrReq {
		switch lower {
		case "x-envoy-original-path":
			return hdrRef{src: srcOriginalPath}, ""
		case "host": // net/http keeps Host out of the header map; it is :authority
			return hdrRef{src: srcAuthority}, ""
		}
	}
	return hdrRef{src: srcReqMap + hdrSrc(set), key: http.CanonicalHeaderKey(name)}, ""
}

// isTokenByte reports whether c may appear in a header name (RFC 9110 tchar).
func isTokenByte(c byte) bool {
	return isNameByte(c) || strings.IndexByte("!#$&'*+-.^`|~", c) >= 0
}
