package ir

import (
	"encoding/json"
	"strings"
	"testing"
)

// Secrets print redacted, yet a changed key or password changes the snapshot's version (the
// data plane must reconnect with it).
func TestVersionSeesRedactedSecrets(t *testing.T) {
	snap := func(pw, key string) *Snapshot {
		s := &Snapshot{
			Certificates:    []*Certificate{{Name: "c", CertPEM: []byte("cert"), KeyPEM: Secret(key)}},
			RateLimitStores: map[string]*RedisStore{"p/default/px": {Address: "r:6379", Password: SecretString(pw)}},
		}
		s.SetVersion()
		return s
	}
	a, b, c := snap("one", "k"), snap("two", "k"), snap("one", "k2")
	if a.Version == b.Version || a.Version == c.Version {
		t.Errorf("versions %s %s %s: a password or key change went unseen", a.Version, b.Version, c.Version)
	}
	if snap("one", "k").Version != a.Version {
		t.Error("equal snapshots got different versions")
	}
	out, _ := json.Marshal(a)
	if strings.Contains(string(out), "one") || strings.Contains(string(out), `"k"`) {
		t.Errorf("secret material printed: %s", out)
	}
}

// A secret deep in a route (an htpasswd file of an AuthPolicy) changes the version though it
// prints redacted.
func TestVersionSeesSecretsInRoutes(t *testing.T) {
	snap := func(users string) string {
		s := &Snapshot{Listeners: []*Listener{{Name: "l", VirtualHosts: []*VirtualHost{{Hostname: "*", Routes: []*Route{{Name: "r",
			Auth: &Auth{Basic: &BasicAuth{Realm: "x", Users: SecretString(users)}}}}}}}}}
		s.SetVersion()
		return s.Version
	}
	if a, b := snap("alice:$2y$04$a"), snap("alice:$2y$04$b"); a == b {
		t.Fatalf("version %s did not change with the htpasswd file", a)
	}
	if a, b := snap("same"), snap("same"); a != b {
		t.Fatalf("version not stable: %s %s", a, b)
	}
}
