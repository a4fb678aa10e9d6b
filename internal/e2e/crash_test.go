package e2e

import (
	"context"
	"fmt"
	"math/rand"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type ack struct {
	partition int32
	offset    int64
}

// TestCrashKeepsAcknowledgedRecords produces with acks=all from several
// goroutines, SIGKILLs the broker mid-stream, restarts it, and checks that
// every acknowledged record is at its acknowledged offset exactly once, that
// offsets are dense and that nothing else in the log is garbage. It repeats
// the kill several times on the same data.
func TestCrashKeepsAcknowledgedRecords(t *testing.T) {
	n := newNode(t)
	n.start()
	const topic, partitions = "crash", 3
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	adm := admin(t, n.kafka)
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	acked := map[string]ack{} // value -> where the broker said it went
	var mu sync.Mutex
	rounds := 4
	if testing.Short() {
		rounds = 2
	}
	for round := 0; round < rounds; round++ {
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				produceUntil(ctx, n.kafka, topic, fmt.Sprintf("r%d-g%d-", round, g), stop, func(v string, a ack) {
					mu.Lock()
					acked[v] = a
					mu.Unlock()
				})
			}(g)
		}
		time.Sleep(time.Duration(300+rand.Intn(500)) * time.Millisecond)
		n.kill()
		close(stop)
		wg.Wait()
		n.start()
		mu.Lock()
		got := len(acked)
		mu.Unlock()
		if got == 0 {
			t.Fatalf("round %d: no record was acknowledged before the kill", round)
		}
		verifyLog(t, ctx, n.kafka, topic, partitions, acked)
	}
	t.Logf("%d acknowledged records verified across %d kills", len(acked), rounds)
}

// produceUntil produces numbered values with acks=all and no retries (so a
// record is either acknowledged once or reported failed) until stop closes.
func produceUntil(ctx context.Context, addr, topic, prefix string, stop chan struct{}, onAck func(string, ack)) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(),
		kgo.RecordRetries(0), kgo.ProducerLinger(time.Millisecond), kgo.RecordDeliveryTimeout(5*time.Second),
		kgo.RetryTimeout(2*time.Second))
	if err != nil {
		return
	}
	defer cl.Close()
	sem := make(chan struct{}, 2000)
	for i := 0; ; i++ {
		select {
		case <-stop:
			cl.Flush(ctx)
			return
		case sem <- struct{}{}:
		}
		v := prefix + strconv.Itoa(i)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}, func(r *kgo.Record, err error) {
			<-sem
			if err == nil {
				onAck(v, ack{r.Partition, r.Offset})
			}
		})
	}
}

// verifyLog reads every partition from the start to its end and checks the
// acknowledged records and the density of offsets.
func verifyLog(t *testing.T, ctx context.Context, addr, topic string, partitions int32, acked map[string]ack) {
	t.Helper()
	adm := admin(t, addr)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	want := int64(0)
	next := map[int32]int64{}
	for p := int32(0); p < partitions; p++ {
		o, _ := ends.Lookup(topic, p)
		want += o.Offset
	}
	seen := map[string]ack{}
	for total := int64(0); total < want; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			total++
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: offset %d after %d: offsets not dense", r.Partition, r.Offset, next[r.Partition]-1)
			}
			next[r.Partition]++
			v := string(r.Value)
			var rr, g, i int
			if _, err := fmt.Sscanf(v, "r%d-g%d-%d", &rr, &g, &i); err != nil {
				t.Fatalf("partition %d offset %d holds %q, not a produced value", r.Partition, r.Offset, v)
			}
			if prev, dup := seen[v]; dup {
				t.Fatalf("value %q at %d/%d and again at %d/%d", v, prev.partition, prev.offset, r.Partition, r.Offset)
			}
			seen[v] = ack{r.Partition, r.Offset}
		})
	}
	for v, a := range acked {
		got, ok := seen[v]
		if !ok {
			t.Fatalf("acknowledged record %q (partition %d offset %d) is lost", v, a.partition, a.offset)
		}
		if got != a {
			t.Fatalf("acknowledged record %q at %d/%d, acknowledged at %d/%d", v, got.partition, got.offset, a.partition, a.offset)
		}
	}
}

func admin(t *testing.T, addr string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}
