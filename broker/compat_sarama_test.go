package broker_test

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/testbroker"
)

var saramaCodecs = map[string]sarama.CompressionCodec{
	"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP, "snappy": sarama.CompressionSnappy,
	"lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD,
}

// TestCompatSarama round-trips records through the broker with IBM/sarama:
// a SyncProducer (protocol 2.8, acks=all) per codec, then a partition
// consumer from the oldest offset, checking every record in order.
func TestCompatSarama(t *testing.T) {
	b := testbroker.Start(t)
	adm, _ := compatAdmin(t, b.Addr())
	n := compatCount()
	for _, c := range compatCodecs {
		t.Run(c.name, func(t *testing.T) {
			topic := "sarama-" + c.name
			compatCreateTopic(t, adm, topic, 1, nil)
			cfg := sarama.NewConfig()
			cfg.ClientID = "sluice-compat-sarama"
			cfg.Version = sarama.V2_8_0_0
			cfg.Producer.Compression = saramaCodecs[c.name]
			cfg.Producer.RequiredAcks = sarama.WaitForAll
			cfg.Producer.Return.Successes = true
			cfg.Producer.Partitioner = sarama.NewManualPartitioner
			cfg.Consumer.Return.Errors = true
			cfg.Consumer.Fetch.Default = 4 << 20
			cfg.Metadata.Retry.Backoff = 50 * time.Millisecond

			saramaProduce(t, b.Addr(), cfg, topic, n)
			if got := compatEndOffset(t, adm, topic, 0); got != int64(n) {
				t.Fatalf("end offset after producing %d records: %d", n, got)
			}
			saramaConsume(t, b.Addr(), cfg, topic, n)
			compatCheckCodec(t, b.Addr(), topic, c.attr)
		})
	}
}

func saramaMessage(topic string, i int) *sarama.ProducerMessage {
	r := testRecord(topic, i)
	m := &sarama.ProducerMessage{
		Topic: topic, Partition: 0, Timestamp: r.Timestamp,
		Key: sarama.ByteEncoder(r.Key), Value: sarama.ByteEncoder(r.Value),
	}
	for _, h := range r.Headers {
		m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
	}
	return m
}

func saramaProduce(t *testing.T, addr string, cfg *sarama.Config, topic string, n int) {
	t.Helper()
	prod, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("sarama producer: %v", err)
	}
	defer func() {
		if err := prod.Close(); err != nil {
			t.Errorf("close sarama producer: %v", err)
		}
	}()
	const chunk = 5_000
	for start := 0; start < n; start += chunk {
		msgs := make([]*sarama.ProducerMessage, 0, chunk)
		for i := start; i < min(start+chunk, n); i++ {
			msgs = append(msgs, saramaMessage(topic, i))
		}
		if err := prod.SendMessages(msgs); err != nil {
			if pe, ok := err.(sarama.ProducerErrors); ok && len(pe) > 0 {
				t.Fatalf("sarama produce of records %d+: %d errors, first: %v", start, len(pe), pe[0].Err)
			}
			t.Fatalf("sarama produce of records %d+: %v", start, err)
		}
		for j, m := range msgs {
			if m.Offset != int64(start+j) {
				t.Fatalf("record %d acknowledged at offset %d", start+j, m.Offset)
			}
		}
	}
}

func saramaConsume(t *testing.T, addr string, cfg *sarama.Config, topic string, n int) {
	t.Helper()
	cons, err := sarama.NewConsumer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("sarama consumer: %v", err)
	}
	defer cons.Close()
	pc, err := cons.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatalf("consume partition: %v", err)
	}
	defer pc.Close()
	timeout := time.NewTimer(2 * time.Minute)
	defer timeout.Stop()
	for next := 0; next < n; next++ {
		select {
		case m := <-pc.Messages():
			got := &kgo.Record{Topic: m.Topic, Key: m.Key, Value: m.Value, Timestamp: m.Timestamp, Offset: m.Offset}
			for _, h := range m.Headers {
				got.Headers = append(got.Headers, kgo.RecordHeader{Key: string(h.Key), Value: h.Value})
			}
			checkRecord(t, got, next)
		case err := <-pc.Errors():
			t.Fatalf("sarama consume after %d records: %v", next, err)
		case <-timeout.C:
			t.Fatalf("sarama consumed %d of %d records in 2 minutes", next, n)
		}
	}
	if hw := pc.HighWaterMarkOffset(); hw != int64(n) {
		t.Errorf("high watermark %d, want %d", hw, n)
	}
}
