package broker_test

import (
	"context"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker/commitlog"
	"github.com/sluice-io/sluice/internal/testbroker"
)

// TestConcurrentFetchesOneSegment sends raw fetches of one partition from
// several connections at once, each walking the log from a different
// offset in small steps, and checks every returned batch byte for byte
// (CRC, base offset). Fetches of one segment share its file, so this
// catches a shared file position in the sendfile path; a Kafka client
// would hide it by silently refetching a batch whose CRC fails.
func TestConcurrentFetchesOneSegment(t *testing.T) {
	b := testbroker.Start(t)
	const topic, n, readers = "shared", 20_000, 8
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prod, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := 0; i < n; i++ {
		prod.Produce(ctx, testRecord(topic, i), nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func(offset int64) {
			defer wg.Done()
			cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			for offset < n && !t.Failed() {
				offset = fetchAndCheck(t, ctx, cl, topic, offset)
			}
		}(int64(r * n / readers))
	}
	wg.Wait()
}

// fetchAndCheck fetches up to 16 KiB at offset, validates every whole batch
// and returns the offset after the last one.
func fetchAndCheck(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, offset int64) int64 {
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.MaxWaitMillis, req.MaxBytes, req.ReplicaID = 12, 0, 16<<10, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = offset, 16<<10, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Errorf("fetch at %d: %v", offset, err)
		return offset
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Errorf("fetch at %d: error %d", offset, p.ErrorCode)
		return offset
	}
	data, next := p.RecordBatches, offset
	for len(data) >= commitlog.HeaderSize {
		size := int(binary.BigEndian.Uint32(data[8:])) + 12
		if size > len(data) {
			break // the byte limit cut the last batch, as Kafka does
		}
		h, err := commitlog.Validate(data[:size])
		if err != nil {
			t.Errorf("fetch at %d returned a bad batch: %v", offset, err)
			return offset
		}
		if next == offset && (h.BaseOffset > offset || h.LastOffset() < offset) {
			t.Errorf("fetch at %d returned a first batch holding %d-%d", offset, h.BaseOffset, h.LastOffset())
			return offset
		}
		if next != offset && h.BaseOffset != next {
			t.Errorf("fetch at %d: batch at %d follows one ending before %d", offset, h.BaseOffset, next)
			return offset
		}
		next = h.LastOffset() + 1
		data = data[size:]
	}
	if next == offset {
		t.Errorf("fetch at %d returned no whole batch", offset)
	}
	return next
}
