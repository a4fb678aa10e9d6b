package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker/commitlog"
	"github.com/sluice-io/sluice/broker/group"
	"github.com/sluice-io/sluice/broker/meta"
)

// The group coordinator (package group) is bound to __consumer_offsets:
// each group lives in partition abs(hash(group id)) % partitions, every
// change is appended there as a record in Kafka's layout, and the state is
// rebuilt from the topic at start. This file is that binding.

const offsetsTopic = "__consumer_offsets"

// groupPartition maps a group id to its __consumer_offsets partition as
// Kafka does: Utils.abs(groupId.hashCode) % partitions, where hashCode is
// Java's String.hashCode over UTF-16 code units.
// It runs for every offset commit, so it walks the string without
// converting it (ranging yields U+FFFD for invalid UTF-8, as []rune does).
func groupPartition(groupID string, partitions int) int {
	var h int32
	for _, r := range groupID {
		if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError || r2 != utf8.RuneError {
			h = 31*(31*h+int32(r1)) + int32(r2) // outside the BMP: a surrogate pair
		} else {
			h = 31*h + int32(r)
		}
	}
	if h == -1<<31 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return int(h) % partitions
}

// newGroupCoordinator builds the coordinator and rebuilds it from
// __consumer_offsets when the topic exists.
func (b *Broker) newGroupCoordinator() error {
	b.groups = group.New(group.Config{
		Log:                   &offsetsLog{b: b},
		InitialRebalanceDelay: max(b.cfg.GroupInitialRebalanceDelay, 0),
		MinSessionTimeout:     b.cfg.GroupMinSessionTimeout,
		MaxSessionTimeout:     b.cfg.GroupMaxSessionTimeout,
		Partitions: func(topic string) int32 {
			b.mu.RLock()
			defer b.mu.RUnlock()
			if t := b.topics[topic]; t != nil {
				return int32(len(t.parts))
			}
			return -1
		},
		Rebalanced: func(d time.Duration) { b.metrics.rebalances.Observe(d.Seconds()) },
		Logger:     b.logger,
	})
	t := b.topicByName(offsetsTopic)
	if t == nil {
		return nil
	}
	b.mu.RLock()
	parts := t.parts
	b.mu.RUnlock()
	for _, p := range parts {
		err := p.log.ReadBatches(0, func(data []byte, h commitlog.Header) bool {
			if h.IsControl() {
				return true
			}
			recs, err := commitlog.DecodeRecords(data)
			if err != nil {
				b.logger.Warn("skipping unreadable __consumer_offsets batch", "partition", p.index, "offset", h.BaseOffset, "err", err)
				return true
			}
			for _, r := range recs {
				if err := b.groups.Load(r.Key, r.Value); err != nil {
					b.logger.Warn("skipping __consumer_offsets record", "partition", p.index, "offset", h.BaseOffset+int64(r.OffsetDelta), "err", err)
				}
			}
			return true
		})
		if err != nil {
			return fmt.Errorf("load %s-%d: %w", offsetsTopic, p.index, err)
		}
	}
	b.groups.Loaded()
	return nil
}

// offsetsTopicReady creates __consumer_offsets on first need and reports
// whether it is open; callers answer COORDINATOR_NOT_AVAILABLE otherwise.
func (b *Broker) offsetsTopicReady() bool {
	if b.topicByName(offsetsTopic) != nil {
		return true
	}
	b.offsetsTopicMu.Lock()
	defer b.offsetsTopicMu.Unlock()
	if b.topicByName(offsetsTopic) != nil {
		return true
	}
	if _, ok := b.meta.Topic(offsetsTopic); !ok {
		errs := b.meta.CreateTopics([]meta.TopicSpec{{
			Name: offsetsTopic, Partitions: b.cfg.OffsetsTopicPartitions, ReplicationFactor: 1, Internal: true,
			Configs: map[string]string{
				"cleanup.policy":   "compact",
				"segment.bytes":    "104857600",
				"compression.type": "producer",
			},
		}})
		if err := errs[0]; err != nil && !errors.Is(err, meta.ErrTopicExists) {
			b.logger.Error("create __consumer_offsets", "err", err)
			return false
		}
	}
	if err := b.reconcile(); err != nil {
		b.logger.Error("open __consumer_offsets", "err", err)
	}
	return b.topicByName(offsetsTopic) != nil
}

// offsetsLog appends the coordinator's records to the group's partition.
type offsetsLog struct {
	b *Broker
	// count caches __consumer_offsets' partition count from the metadata,
	// with the metadata version it was read at: reading it through
	// meta.Topic copies the whole topic, which cost about 10% of the
	// broker's CPU under a stream of offset commits.
	count atomic.Pointer[offsetsCount]
}

type offsetsCount struct {
	version uint64
	n       int
	ok      bool // false: the metadata did not have the topic
}

// partitions returns the partition count of __consumer_offsets in the
// metadata, or ok=false when the metadata lacks the topic.
func (l *offsetsLog) partitions() (n int, ok bool) {
	v := l.b.meta.Version()
	if c := l.count.Load(); c != nil && c.version == v {
		return c.n, c.ok
	}
	// Read after the version: a change in between leaves a newer count
	// under an older version, which the next call replaces.
	mt, ok := l.b.meta.Topic(offsetsTopic)
	c := &offsetsCount{version: v, n: len(mt.Partitions), ok: ok}
	l.count.Store(c)
	return c.n, c.ok
}

func (l *offsetsLog) Append(groupID string, recs []group.Record) <-chan error {
	b := l.b
	fail := func(err error) <-chan error {
		ch := make(chan error, 1)
		ch <- err
		return ch
	}
	t := b.topicByName(offsetsTopic)
	if t == nil {
		return fail(errors.New("__consumer_offsets is not open"))
	}
	b.mu.RLock()
	parts := t.parts
	b.mu.RUnlock()
	n := len(parts)
	if mn, ok := l.partitions(); ok {
		n = mn
	}
	idx := groupPartition(groupID, n)
	if idx >= len(parts) {
		return fail(fmt.Errorf("%s-%d is not open", offsetsTopic, idx))
	}
	p := parts[idx]
	data := coordinatorBatch(recs, time.Now().UnixMilli())
	h, err := commitlog.ParseHeader(data)
	if err != nil {
		return fail(err)
	}
	base, err := p.log.Append([]commitlog.Batch{{Data: data, Header: h}}, p.epoch.Load())
	if err != nil {
		return fail(fmt.Errorf("append to %s-%d: %w", offsetsTopic, idx, err))
	}
	p.notify()
	return b.flusher.Sync(p.log, base+int64(len(recs)))
}

// coordinatorBatch encodes records as one uncompressed record batch v2,
// as Kafka's coordinator writes them (no producer id, CreateTime).
func coordinatorBatch(recs []group.Record, now int64) []byte {
	var raw []byte
	for i, r := range recs {
		kr := kmsg.Record{OffsetDelta: int32(i), Key: r.Key, Value: r.Value}
		kr.Length = int32(len(kr.AppendTo(nil)) - 1) // the length itself encodes in one byte as zero
		raw = kr.AppendTo(raw)
	}
	rb := kmsg.RecordBatch{
		Length:               int32(49 + len(raw)),
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(len(recs) - 1),
		FirstTimestamp:       now,
		MaxTimestamp:         now,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(recs)),
		Records:              raw,
	}
	out := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

// parseGroupSetting applies the group coordinator's broker configs.
func (c *Config) parseGroupSetting(name, value string) (bool, error) {
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		switch name {
		case "offsets.topic.num.partitions", "group.initial.rebalance.delay.ms",
			"group.min.session.timeout.ms", "group.max.session.timeout.ms":
			return true, fmt.Errorf("%q is not a number", value)
		}
		return false, nil
	}
	switch name {
	case "offsets.topic.num.partitions":
		if n < 1 || n > 1<<20 {
			return true, fmt.Errorf("must be between 1 and %d", 1<<20)
		}
		c.OffsetsTopicPartitions = int32(n)
	case "group.initial.rebalance.delay.ms":
		if n < 0 {
			return true, fmt.Errorf("must not be negative")
		}
		c.GroupInitialRebalanceDelay = time.Duration(n) * time.Millisecond
		if n == 0 {
			c.GroupInitialRebalanceDelay = -1
		}
	case "group.min.session.timeout.ms", "group.max.session.timeout.ms":
		if n <= 0 {
			return true, fmt.Errorf("must be positive")
		}
		d := time.Duration(n) * time.Millisecond
		if name == "group.min.session.timeout.ms" {
			c.GroupMinSessionTimeout = d
		} else {
			c.GroupMaxSessionTimeout = d
		}
	default:
		return false, nil
	}
	return true, nil
}
