package htpasswd

import (
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"
)

// Verifier verifies against a File and remembers successful verifications for a while, so a
// client sending the same valid credentials on every request pays bcrypt once per TTL rather
// than per request. Only successes are cached (a wrong password always costs a full
// verification), keyed by a salted SHA-256 of user and password: the cache holds no
// credential. A changed File needs a new Verifier (old entries must not outlive a removed user).
type Verifier struct {
	file *File
	ttl  time.Duration
	max  int
	salt [16]byte
	now  func() time.Time

	mu sync.Mutex
	ok map[[sha256.Size]byte]int64 // key -> expiry (unix ns)
	// pending are the verifications running, by key: concurrent requests with the same
	// credentials wait for the first one's result instead of each paying for the hash (a
	// burst of keep-alive clients right after an entry expired would otherwise run one bcrypt
	// each).
	pending map[[sha256.Size]byte]*pendingVerify
	// verify, when set, replaces the check against the file (a test counts the calls).
	verify func(user, password string) bool
}

type pendingVerify struct {
	done chan struct{}
	ok   bool
}

// NewVerifier caches up to max successes for ttl (defaults: 60 s, 10,000 entries).
func NewVerifier(f *File, ttl time.Duration, max int) *Verifier {
	if ttl <= 0 {
		ttl = time.Minute
	}
	if max <= 0 {
		max = 10000
	}
	v := &Verifier{file: f, ttl: ttl, max: max, now: time.Now, ok: map[[sha256.Size]byte]int64{}, pending: map[[sha256.Size]byte]*pendingVerify{}}
	rand.Read(v.salt[:])
	return v
}

// Verify reports whether password is user's, from the cache when it verified recently.
func (v *Verifier) Verify(user, password string) bool {
	d := sha256.New()
	d.Write(v.salt[:])
	d.Write([]byte(user))
	d.Write([]byte{0})
	d.Write([]byte(password))
	var key [sha256.Size]byte
	d.Sum(key[:0])
	now := v.now().UnixNano()
	v.mu.Lock()
	exp, hit := v.ok[key]
	if hit && now < exp {
		v.mu.Unlock()
		return true
	}
	if p := v.pending[key]; p != nil {
		v.mu.Unlock()
		<-p.done
		return p.ok
	}
	p := &pendingVerify{done: make(chan struct{})}
	v.pending[key] = p
	v.mu.Unlock()
	if v.verify != nil {
		p.ok = v.verify(user, password)
	} else {
		p.ok = v.file.Verify(user, password)
	}
	v.mu.Lock()
	delete(v.pending, key)
	close(p.done)
	if !p.ok {
		v.mu.Unlock()
		return false
	}
	if len(v.ok) >= v.max {
		for k, e := range v.ok { // drop the expired; if none, start over
			if e <= now {
				delete(v.ok, k)
			}
		}
		if len(v.ok) >= v.max {
			clear(v.ok)
		}
	}
	v.ok[key] = now + int64(v.ttl)
	v.mu.Unlock()
	return true
}
