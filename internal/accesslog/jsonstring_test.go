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
		// Rendered in place and escaped there, the same bytes come out.
		tail := append([]byte("prefix"), s...)
		tail = escapeTail(tail, len("prefix"), modeStr)
		if got := string(tail[len("prefix"):]); got != string(AppendJSONString(nil, s)[1:len(AppendJSONString(nil, s))-1]) {
			t.Fatalf("%q escaped in place: %q", s, got)
		}
	})
}
