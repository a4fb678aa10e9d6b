package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Offset expiry (offsets.retention.minutes), with Kafka's rules since 2.1
// (KIP-211), run every offsets.retention.check.interval.ms:
//
//   - A group with a protocol type that is Empty loses all its offsets once
//     the retention has passed since it became Empty. When that moment is
//     unknown (a group loaded from a record without CurrentStateTimestamp),
//     each offset's commit time counts instead.
//   - A Stable "consumer" group loses the offsets of topics none of its
//     members subscribes to, retention after their commit.
//   - A group without a protocol type (standalone commits, never any
//     members) loses each offset retention after its commit.
//   - Other groups (rebalancing, or members of another protocol type)
//     keep their offsets.
//
// An offset committed with an OffsetCommit v2-4 retention time expires at
// that commit's expire timestamp instead of after the retention, in the
// cases above where it may expire at all: Kafka still honours the field
// (it writes such commits as OffsetCommitValue v1), and a client that sets
// it asks for exactly that.
//
// Expired offsets are removed with tombstones; an Empty group left without
// offsets is deleted, with a GroupMetadataKey tombstone if it ever had a
// generation (a group that only held standalone commits has no metadata
// record to delete). The writes are not waited for, as in Kafka: should one
// be lost, the offsets come back at the next load and expire again.

// scheduleExpiry arms the next expiry run, once; each run re-arms it.
func (c *Coordinator) scheduleExpiry() {
	if c.closed || c.expiry != nil {
		return
	}
	c.expiry = time.AfterFunc(c.cfg.OffsetsRetentionCheckInterval, c.expiryRun)
}

func (c *Coordinator) expiryRun() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	writes := c.expireOffsets(time.Now())
	c.mu.Unlock()
	for _, w := range writes {
		if err := <-w.wait; err != nil {
			c.cfg.Logger.Warn("write expired offset tombstones", "group", w.group, "err", err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.expiry.Reset(c.cfg.OffsetsRetentionCheckInterval)
	}
}

// expiryWrite is the tombstone write of one group.
type expiryWrite struct {
	group string
	wait  <-chan error
}

// expireOffsets removes the offsets expired at now and the Empty groups
// left without offsets, as Kafka's GroupMetadataManager.cleanupGroupMetadata
// does, and returns the tombstone writes. Called with c.mu held.
func (c *Coordinator) expireOffsets(now time.Time) []expiryWrite {
	var writes []expiryWrite
	for id, g := range c.groups {
		if g.committing > 0 {
			continue // a commit on its way to the log must not be undone by a tombstone behind it
		}
		var recs []Record
		for _, tp := range g.expiredOffsets(now, c.cfg.OffsetsRetention) {
			delete(g.offsets[tp.topic], tp.partition)
			if len(g.offsets[tp.topic]) == 0 {
				delete(g.offsets, tp.topic)
			}
			recs = append(recs, Record{Key: offsetKey(id, tp.topic, tp.partition)})
		}
		if len(recs) > 0 {
			c.cfg.Logger.Info("expired group offsets", "group", id, "offsets", len(recs))
		}
		if g.state == Empty && len(g.members) == 0 && len(g.pending) == 0 && len(g.offsets) == 0 && len(g.txnOffsets) == 0 {
			g.token++
			delete(c.groups, id)
			if g.generation > 0 {
				recs = append(recs, Record{Key: groupKey(id)})
			}
			if g.cg != nil {
				recs = append(recs, groupTombstones(id)...) // a KIP-848 group's own records
			}
			c.cfg.Logger.Info("deleted empty group without offsets", "group", id, "generation", g.generation)
		}
		if len(recs) > 0 {
			writes = append(writes, expiryWrite{id, c.cfg.Log.Append(id, recs)})
		}
	}
	return writes
}

type topicPartition struct {
	topic     string
	partition int32
}

// expiredOffsets lists g's offsets that have expired at now.
func (g *group) expiredOffsets(now time.Time, retention time.Duration) []topicPartition {
	var (
		since func(offset) int64 // when the retention of an offset began (ms)
		keep  map[string]bool    // topics whose offsets stay
	)
	committed := func(o offset) int64 { return o.timestamp }
	switch {
	case g.protocolType == "":
		since = committed
	case g.state == Empty:
		since = committed
		if !g.stateTime.IsZero() {
			empty := g.stateTime.UnixMilli()
			since = func(offset) int64 { return empty }
		}
	case g.protocolType == "consumer" && g.state == Stable:
		topics, ok := g.subscribedTopics()
		if !ok {
			return nil
		}
		since, keep = committed, topics
	default:
		return nil
	}
	nowMs, ret := now.UnixMilli(), retention.Milliseconds()
	var out []topicPartition
	for t, ps := range g.offsets {
		if keep[t] {
			continue
		}
		for p, o := range ps {
			if o.expireAt > 0 && nowMs >= o.expireAt || o.expireAt <= 0 && nowMs-since(o) >= ret {
				out = append(out, topicPartition{t, p})
			}
		}
	}
	return out
}

// loadedExpireAt is the expire timestamp of a loaded offset commit: only
// version 1 of the value has one, -1 meaning none.
func loadedExpireAt(v *kmsg.OffsetCommitValue) int64 {
	if v.Version == 1 && v.ExpireTimestamp > 0 {
		return v.ExpireTimestamp
	}
	return 0
}

// emptySince is when a group loaded without members became Empty: the
// record's CurrentStateTimestamp (version 2 on), else unknown (zero), and
// expiry counts from each offset's commit.
func emptySince(v *kmsg.GroupMetadataValue) time.Time {
	if v.Version >= 2 && v.CurrentStateTimestamp >= 0 {
		return time.UnixMilli(v.CurrentStateTimestamp)
	}
	return time.Time{}
}
