package proxy

import (
	"testing"

	"apoxy.dev/apoxy/internal/ir"
)

// A store keeps its client across snapshots while its settings stay; a changed one is
// replaced only when the new graphs are swapped in, and a failed serve keeps the old one.
func TestRateLimitStoresFollowSnapshots(t *testing.T) {
	r := &rateLimitStores{byName: map[string]*namedStore{}}
	a := map[string]*ir.RedisStore{"p/default/px": {Address: "127.0.0.1:1"}}
	r.prepare(a)
	if r.get("p/default/px") == nil {
		t.Fatal("a prepared store is not visible to the compile")
	}
	r.finish(true)
	first := r.byName["p/default/px"]
	r.prepare(map[string]*ir.RedisStore{"p/default/px": {Address: "127.0.0.1:1"}})
	r.finish(true)
	if r.byName["p/default/px"] != first {
		t.Error("unchanged settings replaced the store")
	}
	r.prepare(map[string]*ir.RedisStore{"p/default/px": {Address: "127.0.0.1:1", Password: "x"}})
	if r.get("p/default/px") == first.store {
		t.Error("a changed store compiles against the old client")
	}
	r.finish(false) // the serve failed: the old graphs keep the old store
	if r.byName["p/default/px"] != first || r.pending != nil {
		t.Error("a failed serve lost the store in use")
	}
	r.prepare(nil)
	r.finish(true)
	if len(r.byName) != 0 || r.get("p/default/px") != nil {
		t.Error("a store no snapshot names is still served")
	}
}
