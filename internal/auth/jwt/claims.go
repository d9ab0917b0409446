package jwt

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
)

// SplitClaimPath splits a claim path such as "org.id" into its steps. A step whose own name holds
// a dot escapes it as `\.` ("https://example\.com/org" is one claim name), and `\\` is a literal
// backslash; any other backslash is literal too. The result always has at least one step (""
// gives [""]); consecutive dots give empty steps.
func SplitClaimPath(path string) []string {
	if !strings.Contains(path, `\`) {
		return strings.Split(path, ".")
	}
	var segs []string
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c == '\\' && i+1 < len(path) && (path[i+1] == '.' || path[i+1] == '\\'):
			i++
			b.WriteByte(path[i])
		case c == '.':
			segs = append(segs, b.String())
			b.Reset()
		default:
			b.WriteByte(c)
		}
	}
	return append(segs, b.String())
}

// JoinClaimPath is SplitClaimPath's inverse: it escapes each step's dots and backslashes and
// joins the steps with dots.
func JoinClaimPath(steps []string) string {
	var b strings.Builder
	for i, s := range steps {
		if i > 0 {
			b.WriteByte('.')
		}
		for j := 0; j < len(s); j++ {
			if s[j] == '.' || s[j] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(s[j])
		}
	}
	return b.String()
}

// lookupClaim walks path through nested objects.
func lookupClaim(claims map[string]any, path []string) (any, bool) {
	if len(path) == 0 {
		return nil, false
	}
	var cur any = claims
	for _, step := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[step]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// HeaderValue renders a claim value for a request header (claimToHeaders): a string as is, a
// number as plain decimal text (1700000000, not 1.7e+09; large integers keep their digits), a
// bool as true/false, an array of strings joined with ",". Objects, null, arrays holding
// anything but strings, and strings with control characters (which a header cannot carry, and
// which could split it) are refused.
func HeaderValue(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, headerSafe(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok || !headerSafe(s) {
				return "", false
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), true
	case []string:
		for _, s := range x {
			if !headerSafe(s) {
				return "", false
			}
		}
		return strings.Join(x, ","), true
	}
	return scalarText(v)
}

// scalarText renders a number or bool as text.
func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case json.Number:
		if isIntegerLiteral(string(x)) {
			return string(x), true
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return "", false
		}
		return strconv.FormatFloat(f, 'f', -1, 64), true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", false
		}
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

func isIntegerLiteral(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// headerSafe reports whether s can be a header value: no control bytes but tab.
func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// HasScopes reports whether claims grant every scope in required: the union of "scope" and
// "scp", each either a space-separated string (RFC 8693 §4.2) or an array of strings (as some
// providers send "scp"). No required scopes is always true.
func HasScopes(claims map[string]any, required []string) bool {
	if len(required) == 0 {
		return true
	}
	var have []string
	for _, name := range []string{"scope", "scp"} {
		switch x := claims[name].(type) {
		case string:
			have = append(have, strings.Fields(x)...)
		case []any:
			for _, e := range x {
				if s, ok := e.(string); ok {
					have = append(have, s)
				}
			}
		}
	}
	for _, r := range required {
		if !slices.Contains(have, r) {
			return false
		}
	}
	return true
}

// ClaimContains reports whether a claim value matches one of values: a string equal to one, a
// number or bool whose text (as HeaderValue writes it) equals one, or an array with such an
// element. Objects and null match nothing.
func ClaimContains(v any, values []string) bool {
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			if _, nested := e.([]any); !nested && ClaimContains(e, values) {
				return true
			}
		}
		return false
	}
	if arr, ok := v.([]string); ok {
		for _, s := range arr {
			if slices.Contains(values, s) {
				return true
			}
		}
		return false
	}
	if s, ok := v.(string); ok {
		return slices.Contains(values, s)
	}
	s, ok := scalarText(v)
	return ok && slices.Contains(values, s)
}
