package accesslog

import (
	"encoding/json"
	"testing"
)

// FuzzAppendJSONString: whatever the bytes, the encoder writes one JSON string that decodes to
// what encoding/json makes of the same input (invalid UTF-8 replaced alike).
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "\"\\", "\x00\x1f", "<script>", "\xff\xfe", "\u2028\u2029", "日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var got string
		if err := json.Unmarshal(AppendJSONString(nil, s), &got); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		want, _ := json.Marshal(s)
		var ref string
		_ = json.Unmarshal(want, &ref)
		if got != ref {
			t.Fatalf("%q decoded as %q, encoding/json gives %q", s, got, ref)
		}
		// Escaped twice, it is a JSON string whose content is the first escaping's JSON text.
		inner := AppendJSONString(nil, s)
		outer := append(append([]byte{'"'}, appendJSONContent(nil, s, true)...), '"')
		var once string
		if err := json.Unmarshal(outer, &once); err != nil {
			t.Fatalf("%q twice: %s: %v", s, outer, err)
		}
		if once != string(inner[1:len(inner)-1]) {
			t.Fatalf("%q twice decodes to %q, want %q", s, once, inner[1:len(inner)-1])
		}
	})
}
