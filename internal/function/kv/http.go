package kv

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"apoxy.dev/apoxy/internal/function"
)

// Path is where a project's API serves its functions' KV (Handler), for `apoxy kv`.
const Path = "/functions/kv"

// ListResponse is a page of keys, as Handler answers a list.
type ListResponse struct {
	Keys   []KeyJSON `json:"keys"`
	Cursor string    `json:"cursor,omitempty"`
}

// KeyJSON is one listed key.
type KeyJSON struct {
	Name     string     `json:"name"`
	Metadata string     `json:"metadata,omitempty"`
	Expires  *time.Time `json:"expires,omitempty"`
}

// Handler serves one project's function KV over HTTP, behind the project API's
// authentication. Every call names the function (?function=NAMESPACE/NAME):
//
//	GET    ?function=F&key=K                  the value (404 when missing); its metadata in
//	                                          X-Apoxy-KV-Metadata, its expiry in X-Apoxy-KV-Expires
//	GET    ?function=F[&prefix=P&cursor=C&limit=N]  a page of keys (ListResponse)
//	PUT    ?function=F&key=K[&ttl=1h&metadata=JSON]  the body is the value
//	DELETE ?function=F&key=K
//
// Refusals (a key too long, a value too large...) answer 400 with the store's message.
func Handler(ns func(function string) function.KV) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		fn := q.Get("function")
		if fn == "" || !strings.Contains(fn, "/") {
			http.Error(w, "give ?function=NAMESPACE/NAME", http.StatusBadRequest)
			return
		}
		store := ns(fn)
		if store == nil {
			http.Error(w, "functions have no KV store in this process (give apoxy a --data-dir or --redis, or the project's Proxy spec.rateLimit.redis)", http.StatusServiceUnavailable)
			return
		}
		key, hasKey := q.Get("key"), q.Has("key")
		ctx := r.Context()
		fail := func(err error) {
			code := http.StatusBadRequest
			if errors.Is(err, ErrClosed) {
				code = http.StatusServiceUnavailable
			}
			http.Error(w, err.Error(), code)
		}
		switch {
		case r.Method == http.MethodGet && hasKey:
			v, ok, err := store.Get(ctx, key)
			if err != nil {
				fail(err)
				return
			}
			if !ok {
				http.Error(w, "key "+strconv.Quote(key)+" not found", http.StatusNotFound)
				return
			}
			if v.Metadata != "" {
				w.Header().Set("X-Apoxy-KV-Metadata", v.Metadata)
			}
			if !v.Expires.IsZero() {
				w.Header().Set("X-Apoxy-KV-Expires", v.Expires.UTC().Format(time.RFC3339))
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(v.Value)
		case r.Method == http.MethodGet:
			limit, _ := strconv.Atoi(q.Get("limit"))
			keys, next, err := store.List(ctx, q.Get("prefix"), q.Get("cursor"), limit)
			if err != nil {
				fail(err)
				return
			}
			out := ListResponse{Keys: []KeyJSON{}, Cursor: next}
			for _, k := range keys {
				kj := KeyJSON{Name: k.Name, Metadata: k.Metadata}
				if !k.Expires.IsZero() {
					t := k.Expires.UTC()
					kj.Expires = &t
				}
				out.Keys = append(out.Keys, kj)
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(out)
		case r.Method == http.MethodPut && hasKey:
			var opts function.KVPut
			if s := q.Get("ttl"); s != "" {
				d, err := time.ParseDuration(s)
				if err != nil || d <= 0 {
					http.Error(w, "ttl "+strconv.Quote(s)+": give a positive duration (60s, 1h)", http.StatusBadRequest)
					return
				}
				opts.TTL = d
			}
			opts.Metadata = q.Get("metadata")
			b, err := io.ReadAll(io.LimitReader(r.Body, DefaultMaxValueBytes+1))
			if err != nil {
				fail(err)
				return
			}
			if err := store.Put(ctx, key, b, opts); err != nil {
				fail(err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		case r.Method == http.MethodDelete && hasKey:
			if err := store.Delete(ctx, key); err != nil {
				fail(err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			http.Error(w, "GET (with or without key), PUT or DELETE with ?key=", http.StatusMethodNotAllowed)
		}
	})
}
