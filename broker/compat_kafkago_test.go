package broker_test

import (
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/testbroker"
)

var kafkagoCodecs = map[string]kafka.Compression{
	"none": 0, "gzip": kafka.Gzip, "snappy": kafka.Snappy, "lz4": kafka.Lz4, "zstd": kafka.Zstd,
}

// TestCompatKafkaGo round-trips records through the broker with
// segmentio/kafka-go: a synchronous Writer (acks=all, large batches) per
// codec, then a partition Reader without a group, checking every record in
// order.
func TestCompatKafkaGo(t *testing.T) {
	b := testbroker.Start(t)
	adm, _ := compatAdmin(t, b.Addr())
	n := compatCount()
	for _, c := range compatCodecs {
		t.Run(c.name, func(t *testing.T) {
			topic := "kafkago-" + c.name
			compatCreateTopic(t, adm, topic, 1, nil)
			kafkagoProduce(t, b.Addr(), kafkagoCodecs[c.name], topic, n)
			if got := compatEndOffset(t, adm, topic, 0); got != int64(n) {
				t.Fatalf("end offset after producing %d records: %d", n, got)
			}
			kafkagoConsume(t, b.Addr(), topic, n)
			compatCheckCodec(t, b.Addr(), topic, c.attr)
		})
	}
}

func kafkagoMessage(topic string, i int) kafka.Message {
	r := testRecord(topic, i)
	m := kafka.Message{Key: r.Key, Value: r.Value, Time: r.Timestamp}
	for _, h := range r.Headers {
		m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: h.Value})
	}
	return m
}

func kafkagoProduce(t *testing.T, addr string, codec kafka.Compression, topic string, n int) {
	t.Helper()
	const chunk = 10_000
	// A transport of its own: kafka-go's shared DefaultTransport caches
	// metadata for 6s and would not know a topic created since.
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{
		Transport:    tr,
		Addr:         kafka.TCP(addr),
		Topic:        topic,
		Compression:  codec,
		RequiredAcks: kafka.RequireAll,
		BatchSize:    chunk,
		BatchTimeout: 5 * time.Millisecond,
		WriteTimeout: time.Minute,
		Async:        false,
	}
	defer func() {
		if err := w.Close(); err != nil {
			t.Errorf("close kafka-go writer: %v", err)
		}
	}()
	ctx := compatCtx(t, 2*time.Minute)
	for start := 0; start < n; start += chunk {
		msgs := make([]kafka.Message, 0, chunk)
		for i := start; i < min(start+chunk, n); i++ {
			msgs = append(msgs, kafkagoMessage(topic, i))
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("kafka-go write of records %d+: %v", start, err)
		}
	}
	if s := w.Stats(); s.Errors != 0 || s.Messages != int64(n) {
		t.Fatalf("writer stats: %d messages, %d errors; want %d, 0", s.Messages, s.Errors, n)
	}
}

func kafkagoConsume(t *testing.T, addr, topic string, n int) {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   []string{addr},
		Topic:     topic,
		Partition: 0,
		MinBytes:  1,
		MaxBytes:  8 << 20,
		MaxWait:   200 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(kafka.FirstOffset); err != nil {
		t.Fatal(err)
	}
	ctx := compatCtx(t, 2*time.Minute)
	for next := 0; next < n; next++ {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("kafka-go read after %d records: %v", next, err)
		}
		got := &kgo.Record{Topic: m.Topic, Key: m.Key, Value: m.Value, Timestamp: m.Time, Offset: m.Offset}
		for _, h := range m.Headers {
			got.Headers = append(got.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		checkRecord(t, got, next)
	}
	if lag := r.Lag(); lag != 0 {
		t.Errorf("reader lag %d after reading all %d records", lag, n)
	}
}
