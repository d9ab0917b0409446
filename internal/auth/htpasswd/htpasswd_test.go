package htpasswd

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hashWith makes a line with Debian's htpasswd (apache2-utils): the real tool, not our code.
func hashWith(t *testing.T, flag, user, password string) string {
	t.Helper()
	bin, err := exec.LookPath("htpasswd")
	if err != nil {
		if os.Getenv("APOXY_REQUIRE_HTPASSWD") != "" {
			t.Fatal("htpasswd is not installed (apt-get install -y apache2-utils)")
		}
		t.Skip("htpasswd is not installed (apt-get install -y apache2-utils)")
	}
	args := []string{"-nb"}
	if flag != "" {
		args = append(args, flag)
	}
	out, err := exec.Command(bin, append(args, user, password)...).Output()
	if err != nil {
		t.Fatalf("htpasswd %s: %v", flag, err)
	}
	return strings.TrimSpace(string(out))
}

// Every accepted scheme, made by the real htpasswd, verifies the right password and refuses
// others, including passwords longer than one digest (SHA-crypt and APR1 branch on length).
func TestVerifiesEveryScheme(t *testing.T) {
	schemes := map[string]string{"bcrypt": "-B", "apr1": "-m", "sha": "-s", "sha256crypt": "-2", "sha512crypt": "-5"}
	passwords := []string{"p", "correct horse battery staple", strings.Repeat("long-password-", 9), "ünïcödé"}
	for name, flag := range schemes {
		for _, pw := range passwords {
			line := hashWith(t, flag, "alice", pw)
			f, err := Parse([]byte(line + "\n"))
			if err != nil {
				t.Fatalf("%s: parse %v", name, err)
			}
			if !f.Verify("alice", pw) {
				t.Errorf("%s: the right password (%d bytes) was refused", name, len(pw))
			}
			// bcrypt reads 72 bytes of a password (as Apache does): longer ones differ past it.
			if (name != "bcrypt" || len(pw) < 72) && f.Verify("alice", pw+"x") || f.Verify("alice", "") || f.Verify("bob", pw) {
				t.Errorf("%s: a wrong password or user was accepted", name)
			}
			if insecure := f.Insecure(); (name == "sha") != (len(insecure) == 1) {
				t.Errorf("%s: insecure users %v", name, insecure)
			}
		}
	}
}

// {SSHA} (made by other tools, e.g. slappasswd) verifies; SHA-crypt with explicit rounds too.
func TestSaltedSHAAndRounds(t *testing.T) {
	// {SSHA} of "secret" with salt "salt": base64(sha1("secretsalt") + "salt").
	f, err := Parse([]byte("u:{SSHA}gVK8WC9YyFT1gMsQHTGCgT3sSv5zYWx0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !f.Verify("u", "secret") || f.Verify("u", "Secret") {
		t.Error("{SSHA} verification is wrong")
	}
	// The reference vector of the SHA-crypt specification (rounds=10000, "Hello world!").
	f, err = Parse([]byte("u:$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !f.Verify("u", "Hello world!") {
		t.Error("the SHA-256-crypt reference vector does not verify")
	}
	f, err = Parse([]byte("u:$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !f.Verify("u", "Hello world!") {
		t.Error("the SHA-512-crypt reference vector does not verify")
	}
}

// A bad file is refused whole, naming the line and never its content.
func TestRefusesBadFilesByLine(t *testing.T) {
	good := hashWith(t, "-B", "alice", "pw")
	for _, tc := range []struct {
		name, file string
		line       int
		want       string
	}{
		{"plaintext", good + "\nbob:hunter2\n", 2, "unsupported hash"},
		{"DES crypt", "# users\n\nbob:rEK1ecacw.7.c\n", 3, "unsupported hash"},
		{"no colon", good + "\n" + "justaname\n", 2, `not "user:hash"`},
		{"duplicate", good + "\n" + good + "\n", 2, "appears twice"},
		{"bcrypt cost 31", "bob:$2y$31$ABCDEFGHIJKLMNOPQRSTUuMNS0mVlmClxSgGqbLbHd6sp3a5rgLEi\n", 1, "bcrypt cost 31"},
		{"bcrypt cost 15", strings.Replace(good, "$05$", "$15$", 1) + "\n", 1, "bcrypt cost 15"},
		{"truncated apr1", "bob:$apr1$abc$short\n", 1, "malformed APR1"},
		{"bad {SHA}", "bob:{SHA}not-base64!\n", 1, "malformed {SHA}"},
		{"empty user", ":" + strings.TrimPrefix(good, "alice:") + "\n", 1, "empty user"},
	} {
		_, err := Parse([]byte(tc.file))
		var pe *Error
		if !errors.As(err, &pe) || pe.Line != tc.line || !strings.Contains(pe.Msg, tc.want) {
			t.Errorf("%s: %v; want line %d %q", tc.name, err, tc.line, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "$2y$") {
			t.Errorf("%s: the error shows the line's content: %v", tc.name, err)
		}
	}
}

// CRLF files, comments and blank lines are fine.
func TestToleratesCRLFAndComments(t *testing.T) {
	a, b := hashWith(t, "-m", "alice", "a-pw"), hashWith(t, "-5", "bob", "b-pw")
	f, err := Parse([]byte("# team\r\n" + a + "\r\n\r\n  # more\r\n" + b + "\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Len() != 2 || !f.Verify("alice", "a-pw") || !f.Verify("bob", "b-pw") {
		t.Errorf("CRLF file: %d users", f.Len())
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("alice:$2y$05$joMZ0MvFLHW9L3N/Hx88HugClwKx5jxmb..fbBpwmkyVpc1ycSVAy\n"))
	f.Add([]byte("u:$apr1$SVjywxsg$yeMQOh0VPCHoBmW7onisQ0\n# c\n"))
	f.Add([]byte("u:{SHA}UWuXg/ylF+7L0dBk2i0WUxCxl1k=\r\nv:{SSHA}gVK8WC9YyFT1gMsQHTGCgT3sSv5zYWx0\n"))
	f.Add([]byte("u:$5$rounds=1000$salt$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA\n"))
	f.Add([]byte("u:$6$X2h31tKtDWMCUNZB$TuE2jzb6s1tJA9v7vTUsR2hf0etvtq/lOv2CmxdY19YoneB5.BufbBXRBWP9uQFh.NrZz0zuGHRF8JAtbsvM10\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		for user := range file.users {
			file.Verify(user, "guess") // must not panic
		}
	})
}

// Successes are cached for the TTL (a valid client pays bcrypt once), failures never, and
// the cache stays bounded.
func TestVerifierCachesSuccessesOnly(t *testing.T) {
	f, err := Parse([]byte(hashWith(t, "-B", "alice", "pw") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Unix(1000, 0)
	v := NewVerifier(f, time.Minute, 2)
	v.now = func() time.Time { return clock }
	if !v.Verify("alice", "pw") || v.Verify("alice", "wrong") {
		t.Fatal("verification is wrong")
	}
	// A cached success answers without the file: swap in an empty one to prove it.
	v.file = &File{users: map[string]hasher{}}
	if !v.Verify("alice", "pw") {
		t.Error("a recent success was not cached")
	}
	if v.Verify("alice", "wrong") {
		t.Error("a failure was answered from the cache")
	}
	clock = clock.Add(61 * time.Second)
	if v.Verify("alice", "pw") {
		t.Error("a success outlived the TTL")
	}
	three, err := Parse([]byte(hashWith(t, "-m", "a", "1") + "\n" + hashWith(t, "-m", "b", "2") + "\n" + hashWith(t, "-m", "c", "3") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	v.file = three
	for _, c := range [][2]string{{"a", "1"}, {"b", "2"}, {"c", "3"}} {
		if !v.Verify(c[0], c[1]) {
			t.Fatalf("user %s refused", c[0])
		}
		if len(v.ok) > 2 {
			t.Fatalf("cache holds %d entries, bound 2", len(v.ok))
		}
	}
}

// Concurrent requests with the same credentials share one verification: a burst of clients
// right after the cache entry expired costs one bcrypt, not one each.
func TestVerifierCoalescesConcurrentMisses(t *testing.T) {
	f, err := Parse([]byte("alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"))
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(f, time.Minute, 0)
	var calls atomic.Int64
	release := make(chan struct{})
	v.verify = func(u, p string) bool {
		calls.Add(1)
		<-release
		return f.Verify(u, p)
	}
	var wg sync.WaitGroup
	results := make(chan bool, 50)
	for range 50 {
		wg.Go(func() { results <- v.Verify("alice", "password") })
	}
	for calls.Load() == 0 {
		runtime.Gosched()
	}
	time.Sleep(20 * time.Millisecond) // let the others queue behind the first
	close(release)
	wg.Wait()
	close(results)
	for ok := range results {
		if !ok {
			t.Fatal("a waiter got false for good credentials")
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d verifications for one credential, want 1", n)
	}
}
