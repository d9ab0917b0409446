package apiserver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func testKeyring(t testing.TB) *Keyring {
	t.Helper()
	k, err := LoadOrCreateKeyring(filepath.Join(t.TempDir(), "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeyringIsStableAndProjectKeysAreDistinct(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadOrCreateKeyring(filepath.Join(dir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateKeyring(filepath.Join(dir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	if k1.AdminToken() != k2.AdminToken() {
		t.Error("admin key changed on reload")
	}
	base := k1.ProjectToken("p", "uid-1", 0)
	for name, other := range map[string]string{
		"other project":  k1.ProjectToken("q", "uid-1", 0),
		"other uid":      k1.ProjectToken("p", "uid-2", 0),
		"other revision": k1.ProjectToken("p", "uid-1", 1),
		"other secret":   testKeyring(t).ProjectToken("p", "uid-1", 0),
	} {
		if other == base {
			t.Errorf("%s yields the same key", name)
		}
	}
}

func FuzzAuthenticateToken(f *testing.F) {
	k := testKeyring(f)
	good := k.ProjectToken("p", "uid", 3)
	f.Add(good)
	f.Add(k.AdminToken())
	f.Add("apoxy_p_p_3_")
	f.Add("apoxy_p___")
	f.Add("apoxy_admin_")
	a := &tokenAuthenticator{keys: k, lookup: func(name string) (projectKey, bool) {
		return projectKey{uid: "uid", revision: 3}, name == "p"
	}}
	f.Fuzz(func(t *testing.T, token string) {
		resp, ok, err := a.AuthenticateToken(context.Background(), token)
		if err != nil {
			t.Fatal(err)
		}
		if ok != (token == good || token == k.AdminToken()) {
			t.Fatalf("token %q: authenticated = %v", token, ok)
		}
		if ok && resp.User.GetName() == "" {
			t.Fatal("authenticated without a user name")
		}
	})
}

// TestMutatingLimiterAnswers429 fills every write slot and checks the next write waits, then
// gets 429 with Retry-After, while reads pass.
func TestMutatingLimiterAnswers429(t *testing.T) {
	release := make(chan struct{})
	var started sync.WaitGroup
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			started.Done()
			<-release
		}
	})
	l := newMutatingLimiter(2, 50*time.Millisecond, next)
	started.Add(2)
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", nil))
		}()
	}
	started.Wait()

	rec := httptest.NewRecorder()
	l.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), `"reason":"TooManyRequests"`) {
		t.Errorf("third write: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	rec = httptest.NewRecorder()
	l.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("read while writes are full: %d", rec.Code)
	}
	close(release)
	wg.Wait()
	rec = httptest.NewRecorder()
	l.ServeHTTP(rec, httptest.NewRequest(http.MethodDelete, "/", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("write after slots freed: %d", rec.Code)
	}
}
