package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFlushMessagesAndAcks checks durability before the answer: with
// acks=all every acknowledged offset is below the durable (fsynced) offset
// when the producer hears back; with acks=1 the same holds only on a topic
// with flush.messages=1.
func TestFlushMessagesAndAcks(t *testing.T) {
	b, err := New(Config{DataDir: t.TempDir(), KafkaAddr: "127.0.0.1:0", NodeID: 1, AutoCreateTopics: true})
	if err != nil {
		t.Fatal(err)
	}
	go b.Serve()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	one := "1"
	adm, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if _, err := kadm.NewClient(adm).CreateTopic(ctx, 1, 1, map[string]*string{"flush.messages": &one}, "flushed"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		topic string
		acks  kgo.Acks
	}{{"flushed", kgo.LeaderAck()}, {"plain", kgo.AllISRAcks()}} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RequiredAcks(tc.acks), kgo.DisableIdempotentWrite(), kgo.AllowAutoTopicCreation())
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 50; i++ {
			r, err := cl.ProduceSync(ctx, &kgo.Record{Topic: tc.topic, Value: []byte("v")}).First()
			if err != nil {
				t.Fatal(err)
			}
			if d := b.partition(tc.topic, 0).log.DurableOffset(); d <= r.Offset {
				t.Fatalf("%s: offset %d acknowledged with durable offset %d", tc.topic, r.Offset, d)
			}
		}
		cl.Close()
	}
}
