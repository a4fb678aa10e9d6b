package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transactional offset commits (TxnOffsetCommit): the offsets are written
// to __consumer_offsets in a transactional batch of the producer and held
// aside until the transaction's marker lands there. A commit marker makes
// them the group's offsets (unless a later plain commit already replaced
// one); an abort marker drops them. OffsetFetch with require_stable
// answers UNSTABLE_OFFSET_COMMIT for partitions a transaction still holds.

// CommitTxnOffsets handles a TxnOffsetCommit whose producer the
// transaction coordinator has verified. finish waits for durability.
func (c *Coordinator) CommitTxnOffsets(req *kmsg.TxnOffsetCommitRequest) (*kmsg.TxnOffsetCommitResponse, func()) {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	code := c.txnCommitCode(req)
	var g *group
	if code == 0 {
		g = c.groups[req.Group]
		if g == nil {
			g = newGroup(req.Group, time.Now())
			c.groups[req.Group] = g
		}
	}
	now := time.Now().UnixMilli()
	type pendingOffset struct {
		topic string
		part  int32
		o     offset
	}
	var pend []pendingOffset
	var recs []Record
	for _, rt := range req.Topics {
		st := kmsg.NewTxnOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		n := c.cfg.Partitions(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case code != 0:
				sp.ErrorCode = code
			case rp.Partition < 0 || rp.Partition >= n:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.Metadata != nil && len(*rp.Metadata) > c.cfg.MaxMetadataBytes:
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			default:
				o := c.newOffset(rp.Offset, rp.LeaderEpoch, req.Version >= 2, rp.Metadata, now)
				pend = append(pend, pendingOffset{rt.Topic, rp.Partition, o})
				recs = append(recs, Record{Key: offsetKey(req.Group, rt.Topic, rp.Partition), Value: offsetValue(o)})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(recs) == 0 {
		if g != nil {
			c.dropIfUnused(g)
		}
		return resp, func() {}
	}
	// Held aside at once: a marker cannot overtake this write, as the
	// producer ends its transaction only after this answer.
	for _, p := range pend {
		g.holdTxnOffset(req.ProducerID, p.topic, p.part, p.o)
	}
	wait := c.cfg.Log.AppendTxn(req.Group, req.ProducerID, req.ProducerEpoch, recs)
	return resp, func() {
		if err := <-wait; err != nil {
			c.cfg.Logger.Error("write transactional offset commit", "group", req.Group, "err", err)
			c.mu.Lock()
			for _, p := range pend { // not in the log: a marker must not apply them
				if ts := g.txnOffsets[req.ProducerID]; ts != nil {
					delete(ts[p.topic], p.part)
				}
			}
			c.mu.Unlock()
			for i := range resp.Topics {
				for j := range resp.Topics[i].Partitions {
					if resp.Topics[i].Partitions[j].ErrorCode == 0 {
						resp.Topics[i].Partitions[j].ErrorCode = kerr.CoordinatorNotAvailable.Code
					}
				}
			}
		}
	}
}

// txnCommitCode checks the group membership a TxnOffsetCommit v3 carries
// (KIP-447); v0-2 and generation -1 commit without membership.
func (c *Coordinator) txnCommitCode(req *kmsg.TxnOffsetCommitRequest) int16 {
	if c.closed {
		return c.closedErr.Code
	}
	g := c.groups[req.Group]
	if req.Generation < 0 || g == nil {
		return 0
	}
	if g.cg != nil {
		m := g.cg.members[req.MemberID]
		switch {
		case m == nil:
			return kerr.UnknownMemberID.Code
		case req.Generation != m.epoch:
			return kerr.IllegalGeneration.Code
		}
		return 0
	}
	if req.InstanceID != nil {
		if cur, ok := g.static[*req.InstanceID]; ok && cur != req.MemberID {
			return kerr.FencedInstanceID.Code
		}
	}
	switch {
	case g.members[req.MemberID] == nil:
		return kerr.UnknownMemberID.Code
	case req.Generation != g.generation:
		return kerr.IllegalGeneration.Code
	}
	return 0
}

func (g *group) holdTxnOffset(pid int64, topic string, part int32, o offset) {
	if g.txnOffsets == nil {
		g.txnOffsets = map[int64]map[string]map[int32]offset{}
	}
	ts := g.txnOffsets[pid]
	if ts == nil {
		ts = map[string]map[int32]offset{}
		g.txnOffsets[pid] = ts
	}
	if ts[topic] == nil {
		ts[topic] = map[int32]offset{}
	}
	ts[topic][part] = o
}

// CompleteTxn applies (commit) or drops (abort) the offsets producer pid
// committed in its transaction to the groups inPartition selects: those
// of the __consumer_offsets partition whose marker is now durable.
func (c *Coordinator) CompleteTxn(pid int64, commit bool, inPartition func(group string) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, g := range c.groups {
		if g.txnOffsets[pid] == nil || !inPartition(id) {
			continue
		}
		c.completeTxn(g, pid, commit)
	}
}

func (c *Coordinator) completeTxn(g *group, pid int64, commit bool) {
	if commit {
		for topic, ps := range g.txnOffsets[pid] {
			for p, o := range ps {
				g.setOffset(topic, p, o)
			}
		}
	}
	delete(g.txnOffsets, pid)
	if len(g.txnOffsets) == 0 {
		g.txnOffsets = nil
	}
}

// pendingTxn reports whether a transaction holds an offset of the
// partition not yet committed.
func (g *group) pendingTxn(topic string, part int32) bool {
	for _, ts := range g.txnOffsets {
		if _, ok := ts[topic][part]; ok {
			return true
		}
	}
	return false
}

// LoadTxn applies a record of a transactional batch of producer pid read
// back from the log; LoadMarker applies a marker of pid.
func (c *Coordinator) LoadTxn(pid int64, key, value []byte) error {
	if len(key) < 2 || key[0] != 0 || key[1] > 1 || value == nil {
		return c.Load(key, value) // only offset commits are transactional
	}
	var k kmsg.OffsetCommitKey
	var v kmsg.OffsetCommitValue
	if k.ReadFrom(key) != nil || v.ReadFrom(value) != nil {
		return errBadRecord
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[k.Group]
	if g == nil {
		g = newGroup(k.Group, time.Now())
		c.groups[k.Group] = g
	}
	c.seq++
	g.holdTxnOffset(pid, k.Topic, k.Partition, offset{offset: v.Offset, leaderEpoch: v.LeaderEpoch, metadata: v.Metadata, timestamp: v.CommitTimestamp, seq: c.seq})
	return nil
}

// LoadMarker applies a transaction marker of pid read back from one
// __consumer_offsets partition (inPartition selects its groups).
func (c *Coordinator) LoadMarker(pid int64, commit bool, inPartition func(group string) bool) {
	c.CompleteTxn(pid, commit, inPartition)
}
