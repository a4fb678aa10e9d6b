package group

import (
	"encoding/binary"
	"hash/fnv"
	"slices"
	"time"
)

// reconcile moves m towards its target assignment. owned is what the
// member reports it owns; nil means it did not say (a keepalive), which
// never counts as having given anything up.
func (cg *consumerGroup) reconcile(m *cmember, owned partSet, now time.Time) {
	if m.staticLeft {
		return
	}
	switch {
	case m.state == memberUnrevoked:
		if owned == nil || intersects(owned, m.revoking) {
			return // still revoking
		}
		cg.releaseRevoked(m)
	case m.state == memberStable && m.epoch == cg.assignmentEpoch:
		return
	}
	cg.nextAssignment(m, owned, now)
}

// nextAssignment computes m's next step towards its target: first give
// up what the target no longer holds (keeping the epoch until done), then
// take what is free, waiting for partitions others still hold.
func (cg *consumerGroup) nextAssignment(m *cmember, owned partSet, now time.Time) {
	target := cg.target[m.id]
	kept, revoke := partSet{}, partSet{}
	for p, e := range m.assigned {
		if _, ok := target[p]; ok {
			kept[p] = e
		} else {
			revoke[p] = e
		}
	}
	if len(revoke) > 0 && (owned == nil || intersects(owned, revoke)) {
		m.assigned, m.revoking, m.state, m.revokeSince = kept, revoke, memberUnrevoked, now
		return
	}
	m.revoking = revoke // the member does not hold them: release at once
	cg.releaseRevoked(m)
	epoch := cg.assignmentEpoch
	waiting := false
	for p := range target {
		if _, ok := kept[p]; ok {
			continue
		}
		if o, held := cg.owners[p]; held && o != m.id {
			waiting = true
			continue
		}
		kept[p] = epoch
		cg.owners[p] = m.id
	}
	m.assigned = kept
	if m.epoch != epoch {
		m.prevEpoch, m.epoch = m.epoch, epoch
	}
	m.state = memberStable
	if waiting {
		m.state = memberUnreleased
	}
}

// releaseRevoked frees the partitions m was asked to give up.
func (cg *consumerGroup) releaseRevoked(m *cmember) {
	for p := range m.revoking {
		if cg.owners[p] == m.id {
			delete(cg.owners, p)
		}
	}
	m.revoking = nil
	m.state = memberStable
}

func intersects(a, b partSet) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	for p := range a {
		if _, ok := b[p]; ok {
			return true
		}
	}
	return false
}

// memberSnapshot is what a current-assignment record holds, to tell
// whether a heartbeat changed it.
type memberSnapshot struct {
	epoch, prevEpoch   int32
	state              memberState
	assigned, revoking partSet
}

func (m *cmember) snapshot() memberSnapshot {
	return memberSnapshot{m.epoch, m.prevEpoch, m.state, m.assigned, m.revoking}
}

func (s memberSnapshot) same(m *cmember) bool {
	return s.epoch == m.epoch && s.prevEpoch == m.prevEpoch && s.state == m.state &&
		s.assigned.equal(m.assigned) && s.revoking.equal(m.revoking)
}

// refreshSubscriptions resolves the members' subscriptions against the
// topics when the topics changed (or force), and reports whether the
// subscribed topics or their partition counts changed.
func (c *Coordinator) refreshSubscriptions(cg *consumerGroup, force bool) bool {
	v := c.cfg.TopicsVersion()
	if v == cg.topicsVersion && !force {
		return false
	}
	cg.topicsVersion = v
	h := c.resolveSubscriptions(cg)
	if h == cg.metadataHash {
		return false
	}
	cg.metadataHash = h
	return true
}

// resolveSubscriptions sets the topics some member subscribes to and
// returns their hash.
func (c *Coordinator) resolveSubscriptions(cg *consumerGroup) uint64 {
	sub := map[[16]byte]TopicInfo{}
	for _, t := range c.cfg.Topics() {
		for _, m := range cg.members {
			if m.subscribes(t.Name) {
				sub[t.ID] = t
				break
			}
		}
	}
	cg.subscribed = sub
	return topicsHash(sub)
}

// topicsHash identifies a set of topics with their partition counts.
func topicsHash(topics map[[16]byte]TopicInfo) uint64 {
	ids := make([][16]byte, 0, len(topics))
	for id := range topics {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, compareID)
	h := fnv.New64a()
	for _, id := range ids {
		h.Write(id[:])
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(topics[id].Partitions)))
		h.Write([]byte(topics[id].Name))
	}
	return h.Sum64()
}

// computeTarget recomputes the target assignment for the group epoch and
// returns the records of what changed.
func (c *Coordinator) computeTarget(g *group) []Record {
	cg := g.cg
	members := make([]*cmember, 0, len(cg.members))
	for _, m := range cg.members {
		members = append(members, m)
	}
	topics := make([]TopicInfo, 0, len(cg.subscribed))
	for _, t := range cg.subscribed {
		topics = append(topics, t)
	}
	next := assignTarget(cg.assignorName(), members, topics, cg.target)
	var recs []Record
	for id, s := range next {
		if !s.equal(cg.target[id]) || cg.target[id] == nil {
			recs = append(recs, targetMemberRecord(g.id, id, s))
		}
	}
	cg.target, cg.assignmentEpoch = next, cg.epoch
	return append(recs, targetMetadataRecord(g.id, cg.assignmentEpoch))
}

// assignorName is the assignor most members ask for, the default when
// none does (ties go to the one listed first).
func (cg *consumerGroup) assignorName() string {
	votes := map[string]int{}
	for _, m := range cg.members {
		if m.assignor != "" {
			votes[m.assignor]++
		}
	}
	best := assignors[0]
	for _, a := range assignors {
		if votes[a] > votes[best] {
			best = a
		}
	}
	return best
}

// watchConsumer fences m once its session ends without a heartbeat, or
// once it has held partitions it must revoke for longer than its
// rebalance timeout.
func (c *Coordinator) watchConsumer(g *group, m *cmember) {
	m.token++
	token := m.token
	var arm func()
	arm = func() {
		d := c.cfg.ConsumerSessionTimeout - time.Since(m.lastSeen)
		if m.state == memberUnrevoked && m.rebalanceTimeout > 0 {
			d = min(d, m.rebalanceTimeout-time.Since(m.revokeSince))
		}
		time.AfterFunc(max(d, time.Millisecond), func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.closed || m.token != token || c.groups[g.id] != g || g.cg == nil || g.cg.members[m.id] != m {
				return
			}
			now := time.Now()
			why := ""
			switch {
			case now.Sub(m.lastSeen) >= c.cfg.ConsumerSessionTimeout:
				why = "session expired"
			case m.state == memberUnrevoked && m.rebalanceTimeout > 0 && now.Sub(m.revokeSince) >= m.rebalanceTimeout:
				why = "did not revoke partitions within the rebalance timeout"
			}
			if why == "" {
				arm()
				return
			}
			c.cfg.Logger.Info("consumer group member fenced", "group", g.id, "member", m.id, "reason", why)
			recs := c.removeConsumer(g, m)
			c.setConsumerState(g, now)
			c.cfg.Log.Append(g.id, recs)
		})
	}
	arm()
}
