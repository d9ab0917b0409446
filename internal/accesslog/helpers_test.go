package accesslog

import (
	"bytes"
	"encoding/json"
	"testing"
)

// assertJSONLine fails unless line is one valid JSON object followed by one newline.
func assertJSONLine(t *testing.T, line []byte) {
	t.Helper()
	if !bytes.HasSuffix(line, []byte("}\n")) || bytes.Count(line, []byte("\n")) != 1 {
		t.Fatalf("not one line ending the object: %q", line)
	}
	if line[0] != '{' || !json.Valid(line) {
		t.Fatalf("not a valid JSON object: %q", line)
	}
}

// assertTextLine fails unless line is one line: exactly one newline, at its end.
func assertTextLine(t *testing.T, line []byte) {
	t.Helper()
	if !bytes.HasSuffix(line, []byte("\n")) || bytes.Count(line, []byte("\n")) != 1 || bytes.IndexByte(line, '\r') >= 0 {
		t.Fatalf("not exactly one line: %q", line)
	}
}
