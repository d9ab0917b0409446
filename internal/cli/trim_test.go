package cli

import (
	"runtime"
	"sync"
	"testing"
)

// What connections put in sync.Pools when they go to rest (4 KiB read buffers) is freed by the
// idle trim; one collection alone leaves it in the pools' victim caches.
func TestFreeMemoryEmptiesPools(t *testing.T) {
	const n, size = 4096, 4 << 10 // 16 MiB
	var pool sync.Pool
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	for _, b := range bufs {
		pool.Put(b)
	}
	bufs = nil
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap() // the buffers are in the pool's primary cache

	freeMemory()
	after := heap()
	if before < n*size || before-after < n*size*3/4 {
		t.Errorf("heap %d MiB before the trim, %d MiB after: the pooled 16 MiB should be gone", before>>20, after>>20)
	}
	runtime.KeepAlive(&pool)
}
