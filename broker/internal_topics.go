package broker

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-io/sluice/broker/commitlog"
	"github.com/sluice-io/sluice/broker/meta"
)

// coordinatorTopic is a compacted internal topic a coordinator keeps its
// state in (__consumer_offsets, __transaction_state). Each coordinator key
// (group id, transactional id) lives in the partition Kafka's hash picks;
// records are appended there and fsynced before coordinators answer.
type coordinatorTopic struct {
	name       string
	partitions func() int32 // partition count to create it with
	createMu   sync.Mutex   // serializes the creation
	count      atomic.Pointer[partitionCount]
}

// ready creates the topic on first need and reports whether it is open;
// callers answer COORDINATOR_NOT_AVAILABLE otherwise.
func (b *Broker) topicReady(ct *coordinatorTopic) bool {
	if b.topicByName(ct.name) != nil {
		return true
	}
	ct.createMu.Lock()
	defer ct.createMu.Unlock()
	if b.topicByName(ct.name) != nil {
		return true
	}
	if _, ok := b.meta.Topic(ct.name); !ok {
		err := b.createTopic(meta.TopicSpec{
			Name: ct.name, Partitions: ct.partitions(), ReplicationFactor: int16(min(3, max(len(b.placementBrokers()), 1))), Internal: true,
			Configs: map[string]string{
				"cleanup.policy":   "compact",
				"segment.bytes":    "104857600",
				"compression.type": "producer",
			},
		})
		if err != nil && !errors.Is(err, meta.ErrTopicExists) {
			b.logger.Error("create internal topic", "topic", ct.name, "err", err)
			return false
		}
	}
	if err := b.reconcile(); err != nil {
		b.logger.Error("open internal topic", "topic", ct.name, "err", err)
	}
	return b.topicByName(ct.name) != nil
}

// partitionCount is the topic's partition count in the metadata (the
// hash's modulus), 0 when the topic does not exist. It runs for every
// coordinator write, and meta.Topic copies the whole topic, so the count
// is cached with the metadata version it was read at.
func (b *Broker) partitionCount(ct *coordinatorTopic) int {
	v := b.meta.Version()
	if c := ct.count.Load(); c != nil && c.version == v {
		return c.n
	}
	n := 0
	if mt, ok := b.meta.Topic(ct.name); ok {
		n = len(mt.Partitions)
	}
	ct.count.Store(&partitionCount{version: v, n: n})
	return n
}

type partitionCount struct {
	version uint64
	n       int
}

// keyPartition is the open partition holding a coordinator key.
func (b *Broker) keyPartition(ct *coordinatorTopic, key string) (*partition, error) {
	n := b.partitionCount(ct)
	if n == 0 {
		return nil, fmt.Errorf("%s does not exist", ct.name)
	}
	idx := groupPartition(key, n)
	p := b.partition(ct.name, int32(idx))
	if p == nil {
		return nil, fmt.Errorf("%s-%d is not open", ct.name, idx)
	}
	return p, nil
}

// appendKeyed appends records to the key's partition as one batch, as
// Kafka's coordinators write them (CreateTime; no producer id unless pid
// >= 0, which makes it a transactional batch of that producer). The
// channel reports when the batch is fsynced.
func (b *Broker) appendKeyed(ct *coordinatorTopic, key string, recs []kvRecord, pid int64, epoch int16) (<-chan error, error) {
	p, data, err := b.keyedBatch(ct, key, recs, pid, epoch)
	if err != nil {
		return nil, err
	}
	return b.appendBatch(p, data)
}

// appendLazy is appendKeyed for writes answered before their fsync: the
// log is fsynced within lazyFlushInterval instead of at once.
func (b *Broker) appendLazy(ct *coordinatorTopic, key string, recs []kvRecord, pid int64, epoch int16) error {
	p, data, err := b.keyedBatch(ct, key, recs, pid, epoch)
	if err != nil {
		return err
	}
	if _, err := b.appendOnly(p, data); err != nil {
		return err
	}
	b.lazy.mark(p.log)
	return nil
}

// keyedBatch finds the key's partition and encodes the batch for it.
func (b *Broker) keyedBatch(ct *coordinatorTopic, key string, recs []kvRecord, pid int64, epoch int16) (*partition, []byte, error) {
	p, err := b.keyPartition(ct, key)
	if err != nil {
		return nil, nil, err
	}
	var attrs int16
	if pid >= 0 {
		attrs = attrTransactional
	}
	return p, encodeBatch(recs, time.Now().UnixMilli(), pid, epoch, attrs), nil
}

// appendBatch appends one batch the broker encoded to p; the channel
// reports when it is fsynced.
func (b *Broker) appendBatch(p *partition, data []byte) (<-chan error, error) {
	end, err := b.appendOnly(p, data)
	if err != nil {
		return nil, err
	}
	return b.flusher.Sync(p.log, end), nil
}

// appendOnly appends one batch the broker encoded to p and returns the
// offset after it.
func (b *Broker) appendOnly(p *partition, data []byte) (int64, error) {
	h, err := commitlog.ParseHeader(data)
	if err != nil {
		return 0, err
	}
	base, err := p.log.Append([]commitlog.Batch{{Data: data, Header: h}}, p.epoch.Load())
	if err != nil {
		return 0, fmt.Errorf("append to %s-%d: %w", p.t.name, p.index, err)
	}
	p.notify()
	return base + int64(h.LastOffsetDelta) + 1, nil
}

// durable waits for an append's fsync, as a channel.
func durable(synced <-chan error, err error) <-chan error {
	if err != nil {
		return failed(err)
	}
	return synced
}

func failed(err error) <-chan error {
	ch := make(chan error, 1)
	ch <- err
	return ch
}

// loadTopic hands every record of the topic's partitions to fn with its
// batch header, in log order per partition, skipping unreadable batches.
func (b *Broker) loadTopic(name string, fn func(part int32, h *commitlog.Header, key, value []byte) error) error {
	t := b.topicByName(name)
	if t == nil {
		return nil
	}
	b.mu.RLock()
	parts := t.parts
	b.mu.RUnlock()
	for _, p := range parts {
		err := p.log.ReadBatches(0, func(data []byte, h commitlog.Header) bool {
			recs, err := commitlog.DecodeRecords(data)
			if err != nil {
				b.logger.Warn("skipping unreadable batch", "topic", name, "partition", p.index, "offset", h.BaseOffset, "err", err)
				return true
			}
			for _, r := range recs {
				if err := fn(p.index, &h, r.Key, r.Value); err != nil {
					b.logger.Warn("skipping record", "topic", name, "partition", p.index, "offset", h.BaseOffset+int64(r.OffsetDelta), "err", err)
				}
			}
			return true
		})
		if err != nil {
			return fmt.Errorf("load %s-%d: %w", name, p.index, err)
		}
	}
	return nil
}
