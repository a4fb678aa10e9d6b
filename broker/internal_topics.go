package broker

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/broker/commitlog"
	"github.com/sluice-io/sluice/broker/meta"
)

// coordinatorTopic is a compacted internal topic a coordinator keeps its
// state in (__consumer_offsets, __transaction_state). Each coordinator key
// (group id, transactional id) lives in the partition Kafka's hash picks;
// records are appended there by the broker leading that partition, and
// are durable before coordinators answer (coordinatorAppend).
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
		return nil, fmt.Errorf("%s-%d is not open: %w", ct.name, idx, errNotLeader)
	}
	return p, nil
}

// errNotLeader fails a coordinator write to a partition this broker does
// not lead (any more, or at the coordinator's leader epoch).
var errNotLeader = errors.New("not the partition's leader")

// coordinatorWriteTimeout bounds how long a coordinator write waits for the
// ISR, as Kafka's coordinators write with acks=-1 and a timeout.
const coordinatorWriteTimeout = 10 * time.Second

// coordinatorAppend appends one batch the broker encoded to p, which this
// broker must lead (at leader epoch epoch unless it is -1), and reports on
// the channel when the write may be answered.
//
// A leader alone in its ISR (every partition of a standalone node) answers
// as before clustering: lazy writes (offset commits, group metadata) at
// once, the log fsynced within lazyFlushInterval (lazy_flush.go); the
// others once fsynced. A replicated partition answers once the high
// watermark covers the batch (and, unless lazy, once it is fsynced here),
// or fails after coordinatorWriteTimeout: the client retries against the
// coordinator it then finds.
func (b *Broker) coordinatorAppend(p *partition, epoch int32, data []byte, lazy bool) <-chan error {
	p.roleMu.RLock()
	r := p.role.Load()
	if !r.leads() || (epoch >= 0 && r.epoch != epoch) {
		p.roleMu.RUnlock()
		return failed(fmt.Errorf("%s-%d: %w", p.t.name, p.index, errNotLeader))
	}
	end, err := b.appendOnly(p, data)
	p.roleMu.RUnlock()
	if err != nil {
		return failed(err)
	}
	var synced <-chan error
	if lazy {
		b.lazy.mark(p.log)
	} else {
		synced = b.flusher.Sync(p.log, end)
	}
	if r.alone() {
		if lazy {
			return failed(nil)
		}
		return synced
	}
	ch := make(chan error, 1)
	go func() {
		w := replicaWait{p: p, role: r, end: end}
		code := w.wait(b, time.Now().Add(coordinatorWriteTimeout))
		var err error
		if synced != nil {
			err = <-synced
		}
		if code != 0 && err == nil {
			err = fmt.Errorf("replicate to %s-%d: %w", p.t.name, p.index, kerr.ErrorForCode(code))
		}
		ch <- err
	}()
	return ch
}

// appendKeyed appends records to the key's partition as one batch, as
// Kafka's coordinators write them (CreateTime; no producer id unless pid
// >= 0, which makes it a transactional batch of that producer); the
// channel reports when it is durable (coordinatorAppend).
func (b *Broker) appendKeyed(ct *coordinatorTopic, key string, recs []kvRecord, pid int64, epoch int16) <-chan error {
	p, err := b.keyPartition(ct, key)
	if err != nil {
		return failed(err)
	}
	return b.coordinatorAppend(p, -1, keyedBatch(recs, pid, epoch), false)
}

// keyedBatch encodes a coordinator's records as one batch.
func keyedBatch(recs []kvRecord, pid int64, epoch int16) []byte {
	var attrs int16
	if pid >= 0 {
		attrs = attrTransactional
	}
	return encodeBatch(recs, time.Now().UnixMilli(), pid, epoch, attrs)
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

func failed(err error) <-chan error {
	ch := make(chan error, 1)
	ch <- err
	return ch
}

// loadPartition hands every record of p to fn with its batch header, in
// log order, skipping unreadable batches.
func (b *Broker) loadPartition(p *partition, fn func(h *commitlog.Header, key, value []byte) error) error {
	err := p.log.ReadBatches(0, func(data []byte, h commitlog.Header) bool {
		recs, err := commitlog.DecodeRecords(data)
		if err != nil {
			b.logger.Warn("skipping unreadable batch", "topic", p.t.name, "partition", p.index, "offset", h.BaseOffset, "err", err)
			return true
		}
		for _, r := range recs {
			if err := fn(&h, r.Key, r.Value); err != nil {
				b.logger.Warn("skipping record", "topic", p.t.name, "partition", p.index, "offset", h.BaseOffset+int64(r.OffsetDelta), "err", err)
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("load %s-%d: %w", p.t.name, p.index, err)
	}
	return nil
}

// ledInternal lists the open partitions of a topic this broker leads.
func (b *Broker) ledInternal(name string) []*partition {
	t := b.topicByName(name)
	if t == nil {
		return nil
	}
	b.mu.RLock()
	parts := t.parts
	b.mu.RUnlock()
	var out []*partition
	for _, p := range parts {
		if p != nil && p.role.Load().leads() {
			out = append(out, p)
		}
	}
	return out
}
