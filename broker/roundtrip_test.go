package broker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/testbroker"
)

// testRecord is record i of a round-trip test: distinct key, value, headers
// and a timestamp that encodes i, so any loss, reorder or corruption shows.
func testRecord(topic string, i int) *kgo.Record {
	return &kgo.Record{
		Topic:     topic,
		Key:       []byte(fmt.Sprintf("key-%d", i)),
		Value:     []byte(fmt.Sprintf("value-%d-%0100d", i, i)),
		Headers:   []kgo.RecordHeader{{Key: "i", Value: []byte(fmt.Sprint(i))}, {Key: "h2", Value: nil}},
		Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i)),
	}
}

func checkRecord(t *testing.T, got *kgo.Record, i int) {
	t.Helper()
	want := testRecord(got.Topic, i)
	if string(got.Key) != string(want.Key) || string(got.Value) != string(want.Value) {
		t.Fatalf("record %d: key/value %q/%q, want %q/%q", i, got.Key, got.Value[:20], want.Key, want.Value[:20])
	}
	if !got.Timestamp.Equal(want.Timestamp) {
		t.Fatalf("record %d: timestamp %v, want %v", i, got.Timestamp, want.Timestamp)
	}
	if len(got.Headers) != 2 || got.Headers[0].Key != "i" || string(got.Headers[0].Value) != fmt.Sprint(i) || got.Headers[1].Key != "h2" {
		t.Fatalf("record %d: headers %+v", i, got.Headers)
	}
	if got.Offset != int64(i) {
		t.Fatalf("record %d has offset %d", i, got.Offset)
	}
}

// TestFranzGoRoundTrip produces 100k records with each codec and consumes
// every one back, in order, with keys, headers and timestamps intact.
func TestFranzGoRoundTrip(t *testing.T) {
	b := testbroker.Start(t)
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "roundtrip-" + name
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			prod, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ProducerBatchCompression(codec),
				kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(2*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			defer prod.Close()
			errs := make(chan error, 1)
			for i := 0; i < n; i++ {
				prod.Produce(ctx, testRecord(topic, i), func(r *kgo.Record, err error) {
					if err != nil {
						select {
						case errs <- err:
						default:
						}
					}
				})
			}
			if err := prod.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-errs:
				t.Fatalf("produce: %v", err)
			default:
			}
			cons, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			next := 0
			for next < n {
				fs := cons.PollFetches(ctx)
				if err := fs.Err0(); err != nil {
					t.Fatalf("fetch after %d records: %v", next, err)
				}
				fs.EachRecord(func(r *kgo.Record) {
					checkRecord(t, r, next)
					next++
				})
			}
		})
	}
}
