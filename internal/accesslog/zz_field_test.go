package accesslog

import "testing"

func BenchmarkField(b *testing.B) {
	r := benchRecord()
	for _, fl := range DefaultJSON() {
		b.Run(fl.Key, func(b *testing.B) {
			f, _ := ParseJSON([]JSONField{fl}, JSONOptions{})
			buf := make([]byte, 0, 1024)
			for i := 0; i < b.N; i++ {
				buf = f.Append(buf[:0], r)
			}
		})
	}
	b.Run("empty", func(b *testing.B) {
		f, _ := ParseJSON(nil, JSONOptions{})
		buf := make([]byte, 0, 1024)
		for i := 0; i < b.N; i++ {
			buf = f.Append(buf[:0], r)
		}
	})
}
