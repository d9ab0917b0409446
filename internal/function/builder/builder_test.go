package builder

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"apoxy.dev/apoxy/internal/function/source"
)

func TestRetryDelay(t *testing.T) {
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second}
	for i, w := range want {
		if got := retryDelay(i + 1); got != w {
			t.Errorf("retryDelay(%d) = %s, want %s", i+1, got, w)
		}
	}
	if got := retryDelay(40); got != retryMax {
		t.Errorf("retryDelay(40) = %s, want the cap %s", got, retryMax)
	}
}

// TestTransient: only an unreachable source is retried, not one refused for its address,
// nor a source that is missing, or a build error.
func TestTransient(t *testing.T) {
	f := NewFetcher(false)
	_, _, private := f.URL(context.Background(), "http://127.0.0.1:1/x.wasm", "")
	_, _, refused := NewFetcher(true).URL(context.Background(), "http://127.0.0.1:1/x.wasm", "")
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{refused, true},
		{fmt.Errorf("spec.template.code.jsSource.git: %w", refused), true},
		{private, false},
		{errors.New("index.ts:3:7: ERROR: Expected \";\""), false},
		{source.ErrNotFound, false},
	} {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
