package apiserver

import (
	"net/http"
	"time"
)

// mutatingLimiter bounds concurrent writes across every project: they all share one SQLite
// writer, so past this many in flight a write would only queue on the database lock. Excess
// writes wait up to maxWait for a slot, then get 429 with Retry-After, which kubectl and
// client-go retry, instead of timing out deep in storage.
type mutatingLimiter struct {
	slots   chan struct{}
	maxWait time.Duration
	next    http.Handler
}

func newMutatingLimiter(n int, maxWait time.Duration, next http.Handler) *mutatingLimiter {
	return &mutatingLimiter{slots: make(chan struct{}, n), maxWait: maxWait, next: next}
}

func (l *mutatingLimiter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		l.next.ServeHTTP(w, r)
		return
	}
	select {
	case l.slots <- struct{}{}:
	default:
		t := time.NewTimer(l.maxWait)
		select {
		case l.slots <- struct{}{}:
			t.Stop()
		case <-t.C:
			w.Header().Set("Retry-After", "1")
			writeStatus(w, http.StatusTooManyRequests, "TooManyRequests", "too many writes in flight; retry shortly")
			return
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	defer func() { <-l.slots }()
	l.next.ServeHTTP(w, r)
}
