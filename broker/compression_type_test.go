package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/testbroker"
)

// TestTopicCompressionType checks that a topic's compression.type makes the
// broker recompress batches to that codec, and that "producer" keeps them.
func TestTopicCompressionType(t *testing.T) {
	b := testbroker.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, tc := range []struct {
		config string
		want   uint8
	}{{"zstd", 4}, {"uncompressed", 0}, {"producer", 2}} {
		topic := "ct-" + tc.config
		cfg := tc.config
		if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"compression.type": &cfg}, topic); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 100; i++ {
			if err := cl.ProduceSync(ctx, testRecord(topic, i)).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if got := compatStoredCodec(t, b.Addr(), topic); got != tc.want {
			t.Fatalf("compression.type=%s: stored codec %d, want %d", tc.config, got, tc.want)
		}
		cons, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		for next := 0; next < 100; {
			fs := cons.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) { checkRecord(t, r, next); next++ })
		}
		cons.Close()
	}
}
