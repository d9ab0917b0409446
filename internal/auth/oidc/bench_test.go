package oidc

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// BenchmarkSessionRequest measures the per-request cost of a valid session: reading and
// opening the cookies, decoding the claims, stripping the cookies from the request.
func BenchmarkSessionRequest(b *testing.B) {
	for _, size := range []struct {
		name       string
		id, at, rt int
	}{{"small", 900, 40, 40}, {"large", 5000, 4000, 1000}} {
		b.Run(size.name, func(b *testing.B) {
			now := time.Now()
			rp, err := New(Config{
				Issuer: "https://idp.example", ClientID: "c", ClientSecret: "s",
				Keys: KeyRing{newKey()}, CookieSecure: true, Now: func() time.Time { return now },
			})
			if err != nil {
				b.Fatal(err)
			}
			claims, _ := json.Marshal(map[string]any{"sub": "u", "email": "u@example.com", "pad": strings.Repeat("x", size.id)})
			d := SessionData{
				Start: now, Expiry: now.Add(time.Hour),
				IDToken:     "eyJhbGciOiJFUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(claims) + ".sig",
				AccessToken: strings.Repeat("a", size.at), RefreshToken: strings.Repeat("r", size.rt),
			}
			vals, err := rp.jar.encodeSession(&d)
			if err != nil {
				b.Fatal(err)
			}
			var parts []string
			for i, v := range vals {
				parts = append(parts, rp.jar.chunkName(i)+"="+v)
			}
			cookie := "theme=dark; " + strings.Join(parts, "; ")
			req := httptest.NewRequest("GET", "https://app.example/x", nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req.Header = http.Header{"Cookie": {cookie}}
				res := rp.Handle(w, req, "https")
				if res.Session == nil {
					b.Fatal("no session")
				}
			}
			b.ReportMetric(float64(len(vals)), "chunks")
		})
	}
}
