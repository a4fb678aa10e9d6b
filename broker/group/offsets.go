package group

import (
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// commitCode is the group-level check of an OffsetCommit, as Kafka orders
// it. A nil group with a simple (generation < 0) commit is created.
func (c *Coordinator) commitCode(req *kmsg.OffsetCommitRequest) (*group, int16) {
	if req.Group == "" {
		return nil, kerr.InvalidGroupID.Code
	}
	if c.closed {
		return nil, c.closedErr.Code
	}
	g := c.groups[req.Group]
	if g != nil && g.cg != nil {
		return g, c.consumerCommitCode(g, req)
	}
	if g == nil {
		if req.Generation >= 0 {
			return nil, kerr.IllegalGeneration.Code
		}
		g = newGroup(req.Group, time.Now())
		c.groups[req.Group] = g
		return g, 0
	}
	if req.Generation < 0 && g.state == Empty {
		return g, 0 // a commit by a client that assigns itself (no group membership)
	}
	if req.InstanceID != nil {
		if cur, ok := g.static[*req.InstanceID]; ok && cur != req.MemberID {
			return nil, kerr.FencedInstanceID.Code
		}
	}
	switch {
	case g.state == CompletingRebalance:
		return nil, kerr.RebalanceInProgress.Code
	case g.members[req.MemberID] == nil:
		return nil, kerr.UnknownMemberID.Code
	case req.Generation != g.generation:
		return nil, kerr.IllegalGeneration.Code
	}
	g.members[req.MemberID].lastSeen = time.Now()
	return g, 0
}

// newOffset is a committed offset as the coordinator writes it; seq
// orders it after every write before it (the later one wins, in memory as
// in the log). hasEpoch is false for request versions without a leader
// epoch. Callers hold c.mu.
func (c *Coordinator) newOffset(off int64, leaderEpoch int32, hasEpoch bool, metadata *string, now int64) offset {
	c.seq++
	if !hasEpoch {
		leaderEpoch = -1
	}
	return offset{offset: off, leaderEpoch: leaderEpoch, metadata: deref(metadata), timestamp: now, seq: c.seq}
}

// CommitOffsets handles an OffsetCommit request. The response holds the
// refusals; finish, which may block, waits for the accepted offsets to be
// durable, applies them and completes the response.
func (c *Coordinator) CommitOffsets(req *kmsg.OffsetCommitRequest) (*kmsg.OffsetCommitResponse, func()) {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	type pendingOffset struct {
		topic string
		part  int32
		code  *int16
		o     offset
	}
	var pend []pendingOffset
	var recs []Record
	c.mu.Lock()
	g, groupCode := c.commitCode(req)
	owns := c.commitOwnership(g, req)
	now := time.Now().UnixMilli()
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(rt.Partitions))
		n := c.cfg.Partitions(rt.Topic)
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			sp.Default()
			sp.Partition = rp.Partition
			switch {
			case groupCode != 0:
				sp.ErrorCode = groupCode
			case rp.Partition < 0 || rp.Partition >= n:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case owns != nil && !owns(rt.Topic, rp.Partition):
				sp.ErrorCode = kerr.StaleMemberEpoch.Code
			case rp.Metadata != nil && len(*rp.Metadata) > c.cfg.MaxMetadataBytes:
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			default:
				o := c.newOffset(rp.Offset, rp.LeaderEpoch, req.Version >= 6, rp.Metadata, now)
				if req.Version <= 4 && req.RetentionTimeMillis != -1 {
					// Honoured as Kafka (2.1 up to 4.x) honours it: an
					// expire timestamp for this commit (see expire.go).
					o.expireAt = max(now+req.RetentionTimeMillis, 1)
				}
				pend = append(pend, pendingOffset{rt.Topic, rp.Partition, &sp.ErrorCode, o})
				recs = append(recs, Record{Key: offsetKey(req.Group, rt.Topic, rp.Partition), Value: offsetValue(o)})
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	var wait <-chan error
	if len(recs) > 0 {
		wait = c.cfg.Log.Append(req.Group, recs)
		g.committing++
	} else if g != nil {
		c.dropIfUnused(g) // a simple commit that committed nothing leaves no group
	}
	c.mu.Unlock()
	if wait == nil {
		return resp, func() {}
	}
	return resp, func() {
		err := <-wait
		c.mu.Lock()
		defer c.mu.Unlock()
		g.committing--
		for _, p := range pend {
			if err != nil {
				*p.code = kerr.CoordinatorNotAvailable.Code
				continue
			}
			g.setOffset(p.topic, p.part, p.o)
		}
		if err != nil {
			c.cfg.Logger.Error("write offset commit", "group", req.Group, "err", err)
		}
	}
}

// FetchOffsets returns the committed offsets of a group for the topics
// asked for (nil: every committed offset), in OffsetFetch v8's shape.
// Partitions without a commit get offset -1. With requireStable (v7+),
// partitions an ongoing transaction committed get UNSTABLE_OFFSET_COMMIT,
// which clients retry.
func (c *Coordinator) FetchOffsets(groupID string, topics []kmsg.OffsetFetchRequestGroupTopic, requireStable bool) ([]kmsg.OffsetFetchResponseGroupTopic, int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, c.closedErr.Code
	}
	g := c.groups[groupID]
	var out []kmsg.OffsetFetchResponseGroupTopic
	part := func(topic string, p int32) kmsg.OffsetFetchResponseGroupTopicPartition {
		rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = p, -1, -1
		empty := ""
		rp.Metadata = &empty
		if g != nil {
			if requireStable && g.pendingTxn(topic, p) {
				rp.ErrorCode = kerr.UnstableOffsetCommit.Code
			}
			if o, ok := g.offsets[topic][p]; ok {
				md := o.metadata
				rp.Offset, rp.LeaderEpoch, rp.Metadata = o.offset, o.leaderEpoch, &md
			}
		}
		return rp
	}
	if topics == nil {
		if g == nil {
			return nil, 0
		}
		names := make([]string, 0, len(g.offsets))
		for t := range g.offsets {
			names = append(names, t)
		}
		sort.Strings(names)
		for _, t := range names {
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic = t
			ps := make([]int32, 0, len(g.offsets[t]))
			for p := range g.offsets[t] {
				ps = append(ps, p)
			}
			sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
			for _, p := range ps {
				rt.Partitions = append(rt.Partitions, part(t, p))
			}
			out = append(out, rt)
		}
		return out, 0
	}
	for _, t := range topics {
		rt := kmsg.NewOffsetFetchResponseGroupTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rt.Partitions = append(rt.Partitions, part(t.Topic, p))
		}
		out = append(out, rt)
	}
	return out, 0
}

// DeleteOffsets handles OffsetDelete: the group-level code, per-partition
// codes, and finish, which waits for the tombstones to be durable.
func (c *Coordinator) DeleteOffsets(groupID string, topics []kmsg.OffsetDeleteRequestTopic) (int16, []kmsg.OffsetDeleteResponseTopic, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	nothing := func() {}
	if groupID == "" {
		return kerr.InvalidGroupID.Code, nil, nothing
	}
	if c.closed {
		return c.closedErr.Code, nil, nothing
	}
	g := c.groups[groupID]
	if g == nil {
		return kerr.GroupIDNotFound.Code, nil, nothing
	}
	if g.protocolType != "" && g.protocolType != "consumer" && len(g.members) > 0 {
		return kerr.NonEmptyGroup.Code, nil, nothing
	}
	subscribed, known := g.subscribedTopics()
	var out []kmsg.OffsetDeleteResponseTopic
	var recs []Record
	var codes []*int16
	for _, rt := range topics {
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.OffsetDeleteResponseTopicPartition, len(rt.Partitions))
		n := c.cfg.Partitions(rt.Topic)
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			sp.Default()
			sp.Partition = rp.Partition
			switch {
			case rp.Partition < 0 || rp.Partition >= n:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case !known || subscribed[rt.Topic]:
				sp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			default:
				if _, ok := g.offsets[rt.Topic][rp.Partition]; ok {
					delete(g.offsets[rt.Topic], rp.Partition)
					if len(g.offsets[rt.Topic]) == 0 {
						delete(g.offsets, rt.Topic)
					}
					recs = append(recs, Record{Key: offsetKey(groupID, rt.Topic, rp.Partition)})
					codes = append(codes, &sp.ErrorCode)
				}
			}
		}
		out = append(out, st)
	}
	if len(recs) == 0 {
		return 0, out, nothing
	}
	wait := c.cfg.Log.Append(groupID, recs)
	return 0, out, func() {
		if err := <-wait; err != nil {
			c.cfg.Logger.Error("write offset tombstones", "group", groupID, "err", err)
			for _, code := range codes {
				*code = kerr.CoordinatorNotAvailable.Code
			}
		}
	}
}

// ForgetTopics deletes every committed offset of the named (deleted)
// topics, writing tombstones without waiting for them.
func (c *Coordinator) ForgetTopics(topics []string) {
	if len(topics) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	for _, g := range c.groups {
		var recs []Record
		for _, t := range topics {
			for p := range g.offsets[t] {
				recs = append(recs, Record{Key: offsetKey(g.id, t, p)})
			}
			delete(g.offsets, t)
		}
		if len(recs) > 0 {
			c.cfg.Log.Append(g.id, recs)
		}
	}
}
