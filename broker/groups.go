package broker

import (
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/sluice-io/sluice/broker/group"
)

// The group coordinators (package group) are bound to __consumer_offsets:
// each group lives in partition abs(hash(group id)) % partitions, every
// change is appended there as a record in Kafka's layout, and a
// partition's groups are rebuilt from it by the broker that leads it
// (group_coordinators.go). This file is that binding.

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

// newGroupCoordinator builds the group coordinators of the
// __consumer_offsets partitions this broker leads, each loaded from its
// partition. Partitions opened before (broker.New reconciles first) are
// picked up here; later leadership changes arrive through
// coordinatorLeadership.
func (b *Broker) newGroupCoordinator() error {
	b.groups = newGroupCoordinators(b)
	for _, p := range b.ledInternal(offsetsTopic) {
		b.groups.leadership(p, true, p.role.Load().epoch)
	}
	b.groups.loads.Wait() // at start, as before clustering: loaded before serving
	return nil
}

// groupConfig is the configuration of the coordinator of shard s.
func (b *Broker) groupConfig(s *groupShard) group.Config {
	return group.Config{
		Log:                           offsetsLog{b, s},
		InitialRebalanceDelay:         max(b.cfg.GroupInitialRebalanceDelay, 0),
		MinSessionTimeout:             b.cfg.GroupMinSessionTimeout,
		MaxSessionTimeout:             b.cfg.GroupMaxSessionTimeout,
		MaxSize:                       b.cfg.GroupMaxSize,
		OffsetsRetention:              b.cfg.OffsetsRetention,
		OffsetsRetentionCheckInterval: b.cfg.OffsetsRetentionCheckInterval,
		Partitions:                    b.partitionsOf,
		Rebalanced:                    func(d time.Duration) { b.metrics.rebalances.Observe(d.Seconds()) },
		Logger:                        b.logger.With("partition", s.p.index),

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
	}
}

// offsetsTopicReady creates __consumer_offsets on first need and reports
// whether it is open; callers answer COORDINATOR_NOT_AVAILABLE otherwise.
func (b *Broker) offsetsTopicReady() bool { return b.topicReady(&b.offsetsCT) }

// offsetsLog appends a coordinator's records to its partition, which this
// broker must still lead at the coordinator's leader epoch.
//
// On a standalone node the coordinator answers once a write is in the log
// (the page cache), not once it is fsynced: like Kafka, which never fsyncs
// offset commits, an acknowledged commit survives a crash of the process,
// and the fsync the write needs lands within lazyFlushInterval
// (lazy_flush.go). Waiting for it capped commits at a few thousand per
// second per partition (one fsync round each); a machine crash can at
// worst move a group back to offsets a few milliseconds older, which
// consumers already tolerate (at-least-once). On a replicated partition it
// answers once the ISR has the write (Kafka's acks=-1), still without
// waiting for the local fsync. Transaction state and markers are fsynced
// before answers (txns.go): exactly-once depends on them.
type offsetsLog struct {
	b *Broker
	s *groupShard
}

func (l offsetsLog) Append(groupID string, recs []group.Record) <-chan error {
	return l.b.coordinatorAppend(l.s.p, l.s.epoch.Load(), keyedBatch(kvRecords(recs), -1, -1), true)
}

// AppendTxn writes a transactional offset commit: a transactional batch of
// the producer, which its transaction's marker completes.
func (l offsetsLog) AppendTxn(groupID string, pid int64, epoch int16, recs []group.Record) <-chan error {
	return l.b.coordinatorAppend(l.s.p, l.s.epoch.Load(), keyedBatch(kvRecords(recs), pid, epoch), true)
}

func kvRecords(recs []group.Record) []kvRecord {
	kv := make([]kvRecord, len(recs))
	for i, r := range recs {
		kv[i] = kvRecord{r.Key, r.Value}
	}
	return kv
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
