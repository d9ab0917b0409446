package apiserver

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BenchmarkColdStart measures a fresh server (new data directory: CA, keys, database, the
// default project and its objects) from Start until the API serves.
func BenchmarkColdStart(b *testing.B) {
	for i := 0; i < b.N; i++ {
		s, err := New(Options{DataDir: b.TempDir(), Addr: "127.0.0.1:0", Ports: Ports{HTTP: 8080, HTTPS: 8443}, Logger: discardLogger()})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if err := s.Start(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cancel()
		s.Shutdown()
		b.StartTimer()
	}
}

// BenchmarkCreateBackend measures API write throughput: concurrent clients creating Backends
// through HTTPS, validation and SQLite (synchronous=FULL, as in production).
func BenchmarkCreateBackend(b *testing.B) {
	for _, clients := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			s, err := New(Options{DataDir: b.TempDir(), Addr: "127.0.0.1:0", Ports: Ports{HTTP: 8080, HTTPS: 8443}, Logger: discardLogger()})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer func() { cancel(); s.Shutdown() }()
			if err := s.Start(ctx); err != nil {
				b.Fatal(err)
			}
			rc := s.dynamic(b, "default", s.AdminToken()).Resource(backendsGVR).Namespace("default")
			var n atomic.Int64
			b.SetParallelism(clients)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					be := obj(b, seedBackend)
					be.SetName(fmt.Sprintf("be-%d", n.Add(1)))
					if _, err := rc.Create(context.Background(), be, metav1.CreateOptions{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "objects/s")
		})
	}
}
