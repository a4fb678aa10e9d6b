package broker_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/testbroker"
)

// idemRecords is how many records the sarama and kcat idempotence checks
// send: enough for many batches, few enough to stay quick.
const idemRecords = 20_000

// checkIdempotentBatches reads topic's partition 0 and fails unless it holds
// want records at offsets 0..want-1, every one written by an idempotent
// producer (a producer id set: the client did use InitProducerId).
func checkIdempotentBatches(t *testing.T, addr, topic string, want int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := compatCtx(t, time.Minute)
	got := 0
	for got < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records: %v", got, want, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.ProducerID < 0 || r.Offset != int64(got) {
				t.Fatalf("record at offset %d (want %d): producer id %d, not idempotent", r.Offset, got, r.ProducerID)
			}
			got++
		})
	}
}

func TestIdempotentSarama(t *testing.T) {
	b := testbroker.Start(t)
	adm, _ := compatAdmin(t, b.Addr())
	const topic = "idem-sarama"
	compatCreateTopic(t, adm, topic, 1, nil)
	cfg := sarama.NewConfig()
	cfg.ClientID = "sluice-idem-sarama"
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Retry.Max = 5
	cfg.Net.MaxOpenRequests = 1 // sarama's condition for idempotence
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Consumer.Return.Errors = true
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond

	saramaProduce(t, b.Addr(), cfg, topic, idemRecords)
	saramaConsume(t, b.Addr(), cfg, topic, idemRecords)
	checkIdempotentBatches(t, b.Addr(), topic, idemRecords)
}

func TestIdempotentKcat(t *testing.T) {
	kcatPath(t)
	b := testbroker.Start(t)
	adm, _ := compatAdmin(t, b.Addr())
	const topic = "idem-kcat"
	compatCreateTopic(t, adm, topic, 1, nil)
	var input bytes.Buffer
	for i := range idemRecords {
		fmt.Fprintf(&input, "%s\n", kcatValue(i))
	}
	kcatRun(t, input.Bytes(), "-P", "-b", b.Addr(), "-t", topic, "-p", "0",
		"-X", "enable.idempotence=true", "-X", "linger.ms=5")
	if got := compatEndOffset(t, adm, topic, 0); got != idemRecords {
		t.Fatalf("end offset after kcat produced %d records: %d", idemRecords, got)
	}
	checkIdempotentBatches(t, b.Addr(), topic, idemRecords)
}
