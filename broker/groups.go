package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"strconv"
	"time"
	"unicode/utf16"

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
func groupPartition(groupID string, partitions int) int {
	var h int32
	for _, u := range utf16.Encode([]rune(groupID)) {
		h = 31*h + int32(u)
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
		Log:                           offsetsLog{b},
		InitialRebalanceDelay:         max(b.cfg.GroupInitialRebalanceDelay, 0),
		MinSessionTimeout:             b.cfg.GroupMinSessionTimeout,
		MaxSessionTimeout:             b.cfg.GroupMaxSessionTimeout,
		MaxSize:                       b.cfg.GroupMaxSize,
		OffsetsRetention:              b.cfg.OffsetsRetention,
		OffsetsRetentionCheckInterval: b.cfg.OffsetsRetentionCheckInterval,
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

		ConsumerHeartbeatInterval: b.cfg.ConsumerGroupHeartbeatInterval,
		ConsumerSessionTimeout:    b.cfg.ConsumerGroupSessionTimeout,
		ConsumerMaxSize:           b.cfg.ConsumerGroupMaxSize,
		TopicsVersion:             b.meta.Version,
		Topics: func() []group.TopicInfo {
			ts := b.meta.Topics()
			out := make([]group.TopicInfo, len(ts))
			for i, t := range ts {
				out[i] = group.TopicInfo{Name: t.Name, ID: t.ID, Partitions: int32(len(t.Partitions))}
			}
			return out
		},
	})
	t := b.topicByName(offsetsTopic)
	if t == nil {
		b.groups.Loaded() // nothing to load; starts offset expiry
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
type offsetsLog struct{ b *Broker }

func (l offsetsLog) Append(groupID string, recs []group.Record) <-chan error {
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
	if mt, ok := b.meta.Topic(offsetsTopic); ok {
		n = len(mt.Partitions)
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
			"group.min.session.timeout.ms", "group.max.session.timeout.ms", "group.max.size",
			"offsets.retention.minutes", "offsets.retention.check.interval.ms",
			"group.consumer.heartbeat.interval.ms", "group.consumer.session.timeout.ms", "group.consumer.max.size":
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
	case "group.consumer.heartbeat.interval.ms", "group.consumer.session.timeout.ms":
		if n <= 0 || n > 1<<31-1 {
			return true, fmt.Errorf("must be positive")
		}
		d := time.Duration(n) * time.Millisecond
		if name == "group.consumer.heartbeat.interval.ms" {
			c.ConsumerGroupHeartbeatInterval = d
		} else {
			c.ConsumerGroupSessionTimeout = d
		}
	case "group.consumer.max.size":
		if n < 1 || n > 1<<31-1 {
			return true, fmt.Errorf("must be between 1 and %d", 1<<31-1)
		}
		c.ConsumerGroupMaxSize = int(n)
	case "group.max.size":
		if n < 1 || n > math.MaxInt32 {
			return true, fmt.Errorf("must be between 1 and %d", math.MaxInt32)
		}
		c.GroupMaxSize = int(n)
		if n == math.MaxInt32 {
			c.GroupMaxSize = 0 // Kafka's default: no limit
		}
	case "offsets.retention.minutes":
		if n < 1 || n > math.MaxInt32 {
			return true, fmt.Errorf("must be between 1 and %d", math.MaxInt32)
		}
		// Kafka allows up to 2^31-1 minutes, past what a Duration holds.
		c.OffsetsRetention = time.Duration(min(n, int64(math.MaxInt64/time.Minute))) * time.Minute
	case "offsets.retention.check.interval.ms":
		if n < 1 {
			return true, fmt.Errorf("must be positive")
		}
		c.OffsetsRetentionCheckInterval = time.Duration(n) * time.Millisecond
	default:
		return false, nil
	}
	return true, nil
}
