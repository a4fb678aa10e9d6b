package meta

import (
	"fmt"
	"testing"
)

// BenchmarkCreateTopics creates 1,000 topics of 10 partitions in one call, on a
// real boltdb log.
func BenchmarkCreateTopics(b *testing.B) {
	s := openStore(b, Config{Dir: b.TempDir()})
	specs := make([]TopicSpec, 1000)
	b.ReportAllocs()
	for n := 0; b.Loop(); n++ {
		for i := range specs {
			specs[i] = TopicSpec{Name: fmt.Sprintf("b%d-t%04d", n, i), Partitions: 10, ReplicationFactor: 1}
		}
		for _, err := range s.CreateTopics(specs) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkTopic measures the produce path's lookup.
func BenchmarkTopic(b *testing.B) {
	s := openStore(b, Config{})
	mustCreate(b, s, TopicSpec{Name: "t", Partitions: 10})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := s.Topic("t"); !ok {
				b.Fatal("missing")
			}
		}
	})
}
