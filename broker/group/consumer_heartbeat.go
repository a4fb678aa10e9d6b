package group

import (
	"regexp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConsumerHeartbeat handles a ConsumerGroupHeartbeat: joins (epoch 0),
// heartbeats, leaves (-1) and static leaves (-2). The response is complete
// except for durability: finish waits for the records the heartbeat wrote
// and turns the response into COORDINATOR_NOT_AVAILABLE if they failed.
func (c *Coordinator) ConsumerHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest, clientID, clientHost string) (*kmsg.ConsumerGroupHeartbeatResponse, func()) {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	nothing := func() {}
	fail := func(e *kerr.Error, msg string) (*kmsg.ConsumerGroupHeartbeatResponse, func()) {
		resp.ErrorCode, resp.MemberEpoch = e.Code, -1
		if msg != "" {
			resp.ErrorMessage = &msg
		}
		return resp, nothing
	}
	re, e, msg := validateHeartbeat(req)
	if e != nil {
		return fail(e, msg)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fail(c.closedErr, "")
	}
	now := time.Now()
	g, recs, e, msg := c.consumerGroupFor(req.Group, req.MemberEpoch == 0, now)
	if e != nil {
		return fail(e, msg)
	}
	if req.MemberEpoch == 0 && req.MemberID == "" { // v0: the coordinator names the member
		req.MemberID = newMemberID("")[1:]
	}
	hb := heartbeat{req: req, re: re, clientID: clientID, clientHost: clientHost, now: now, owned: ownedParts(req)}
	var m *cmember
	switch req.MemberEpoch {
	case -1, -2:
		recs, e = c.consumerLeave(g, &hb, recs)
	default:
		m, recs, e, msg = c.consumerMember(g, &hb, recs)
		if e == nil {
			recs = c.consumerUpdate(g, m, &hb, recs)
		}
	}
	if e != nil {
		if len(recs) > 0 {
			c.cfg.Log.Append(g.id, recs)
		}
		return fail(e, msg)
	}
	id := req.MemberID
	resp.MemberID = &id
	resp.HeartbeatIntervalMillis = int32(c.cfg.ConsumerHeartbeatInterval / time.Millisecond)
	resp.MemberEpoch = req.MemberEpoch
	if m != nil {
		resp.MemberEpoch = m.epoch
		if req.MemberEpoch == 0 || hb.full() || !m.assigned.equal(m.sent) {
			resp.Assignment = assignmentOf(m.assigned)
			m.sent = m.assigned
		}
	}
	c.setConsumerState(g, now)
	if len(recs) == 0 {
		return resp, nothing
	}
	wait := c.cfg.Log.Append(g.id, recs)
	return resp, func() {
		if err := <-wait; err != nil {
			c.cfg.Logger.Error("write consumer group records", "group", g.id, "err", err)
			resp.ErrorCode, resp.Assignment = kerr.CoordinatorNotAvailable.Code, nil
			c.mu.Lock()
			if m != nil {
				m.sent = nil // resend the assignment on the retry
			}
			c.mu.Unlock()
		}
	}
}

// heartbeat is one ConsumerGroupHeartbeat being handled.
type heartbeat struct {
	req                  *kmsg.ConsumerGroupHeartbeatRequest
	re                   *regexp.Regexp
	clientID, clientHost string
	now                  time.Time
	owned                partSet // partitions the member reports; nil: unchanged
	created              bool    // the member joined with this request
}

// full reports whether the request carries every optional field, as a
// member sends after an error: it then gets its whole assignment back.
func (hb *heartbeat) full() bool {
	r := hb.req
	return r.RebalanceTimeoutMillis != -1 && (r.SubscribedTopicNames != nil || r.SubscribedTopicRegex != nil) && r.Topics != nil
}

// validateHeartbeat applies Kafka's request checks; the regular
// expression is compiled here, outside the coordinator's lock.
func validateHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest) (*regexp.Regexp, *kerr.Error, string) {
	bad := func(msg string) (*regexp.Regexp, *kerr.Error, string) { return nil, kerr.InvalidRequest, msg }
	switch {
	case req.Group == "":
		return bad("GroupId can't be empty.")
	case req.RackID != nil && *req.RackID == "":
		return bad("RackId can't be empty.")
	case req.InstanceID != nil && *req.InstanceID == "":
		return bad("InstanceId can't be empty.")
	case req.MemberEpoch < -2:
		return bad("MemberEpoch is invalid.")
	case req.MemberID == "" && (req.Version >= 1 || req.MemberEpoch != 0):
		return bad("MemberId can't be empty.")
	case req.MemberEpoch == -2 && req.InstanceID == nil:
		return bad("InstanceId can't be null.")
	case req.MemberEpoch == 0 && req.RebalanceTimeoutMillis < 0:
		return bad("RebalanceTimeoutMs must be provided in first request.")
	case req.MemberEpoch == 0 && req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil:
		return bad("SubscribedTopicNames or SubscribedTopicRegex must be set in first request.")
	case req.MemberEpoch == 0 && (req.Topics == nil || len(req.Topics) > 0):
		return bad("TopicPartitions must be empty when (re-)joining.")
	case req.ServerAssignor != nil && !slices.Contains(assignors, *req.ServerAssignor):
		return nil, kerr.UnsupportedAssignor, "ServerAssignor " + *req.ServerAssignor + " is not supported. Supported assignors: uniform, range."
	}
	if req.SubscribedTopicRegex == nil || *req.SubscribedTopicRegex == "" {
		return nil, nil, ""
	}
	re, err := regexp.Compile("^(?:" + *req.SubscribedTopicRegex + ")$")
	if err != nil {
		return nil, kerr.InvalidRegularExpression, "SubscribedTopicRegex " + *req.SubscribedTopicRegex + " is not a valid regular expression: " + err.Error()
	}
	return re, nil, ""
}

// ownedParts is the request's owned partitions; nil when not sent.
func ownedParts(req *kmsg.ConsumerGroupHeartbeatRequest) partSet {
	if req.Topics == nil {
		return nil
	}
	s := partSet{}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			s[tp{t.TopicID, p}] = 0
		}
	}
	return s
}

func assignmentOf(s partSet) *kmsg.ConsumerGroupHeartbeatResponseAssignment {
	a := &kmsg.ConsumerGroupHeartbeatResponseAssignment{}
	a.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
	for _, t := range s.byTopic() {
		at := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
		at.TopicID, at.Partitions = t.id, t.parts
		a.Topics = append(a.Topics, at)
	}
	return a
}

// consumerGroupFor finds the KIP-848 group id, creating it (or converting
// an empty classic group, keeping its offsets) when create is set.
func (c *Coordinator) consumerGroupFor(id string, create bool, now time.Time) (*group, []Record, *kerr.Error, string) {
	g := c.groups[id]
	switch {
	case g == nil && !create:
		return nil, nil, kerr.UnknownMemberID, "Group " + id + " does not exist."
	case g == nil:
		g = newGroup(id, now)
		c.groups[id] = g
	case g.cg != nil:
		return g, nil, nil, ""
	case len(g.members) > 0 || len(g.pending) > 0 || g.state != Empty:
		return nil, nil, kerr.GroupIDNotFound, "Group " + id + " is not a consumer group."
	case !create:
		return nil, nil, kerr.UnknownMemberID, "Group " + id + " has no member."
	}
	var recs []Record
	if g.generation > 0 || g.protocolType != "" {
		recs = append(recs, Record{Key: groupKey(id)}) // the classic group is gone
	}
	g.cg = newConsumerGroup()
	g.protocolType, g.protocol, g.generation, g.leader = "consumer", "", 0, ""
	return g, recs, nil, ""
}

// consumerMember finds or admits the member of a join or heartbeat and
// checks its epoch.
func (c *Coordinator) consumerMember(g *group, hb *heartbeat, recs []Record) (*cmember, []Record, *kerr.Error, string) {
	cg, req := g.cg, hb.req
	m := cg.members[req.MemberID]
	if req.MemberEpoch != 0 {
		switch {
		case m == nil:
			return nil, recs, kerr.UnknownMemberID, "Member " + req.MemberID + " is not a member of group " + g.id + "."
		case req.InstanceID != nil && cg.static[*req.InstanceID] != req.MemberID:
			return nil, recs, kerr.FencedInstanceID, ""
		case req.MemberEpoch > m.epoch,
			req.MemberEpoch < m.epoch && (req.MemberEpoch != m.prevEpoch || hb.owned == nil || !subset(hb.owned, m.assigned)):
			return nil, recs, kerr.FencedMemberEpoch, "The consumer group member has a different epoch than expected by the coordinator."
		}
		return m, recs, nil, ""
	}
	if inst := req.InstanceID; inst != nil {
		if oldID, ok := cg.static[*inst]; ok && oldID != req.MemberID {
			old := cg.members[oldID]
			if !old.staticLeft {
				return nil, recs, kerr.UnreleasedInstanceID, "Static member " + *inst + " is still in use by another member."
			}
			recs = append(recs, memberTombstones(g.id, oldID)...)
			c.renameMember(cg, old, req.MemberID)
			m = old
		}
	}
	if m != nil {
		renamed := m.id != req.MemberID || len(recs) > 0
		if m.staticLeft || renamed {
			if m.staticLeft {
				m.staticLeft, m.epoch = false, m.prevEpoch
			}
			// A static member back (under a new id, or its own): write its
			// whole state, which a reload would otherwise not find.
			recs = append(recs, memberMetadataRecord(g.id, m), targetMemberRecord(g.id, m.id, cg.target[m.id]), currentAssignmentRecord(g.id, m))
		}
		return m, recs, nil, ""
	}
	if len(cg.members) >= c.cfg.ConsumerMaxSize {
		return nil, recs, kerr.GroupMaxSizeReached, "The consumer group has reached its maximum capacity."
	}
	m = &cmember{id: req.MemberID, assigned: partSet{}, lastSeen: hb.now}
	cg.members[m.id] = m
	if req.InstanceID != nil {
		inst := *req.InstanceID
		m.instanceID = &inst
		cg.static[inst] = m.id
	}
	hb.created = true
	c.watchConsumer(g, m)
	return m, recs, nil, ""
}

// renameMember hands a static member's state to its new member id.
func (c *Coordinator) renameMember(cg *consumerGroup, m *cmember, id string) {
	delete(cg.members, m.id)
	if t, ok := cg.target[m.id]; ok {
		delete(cg.target, m.id)
		cg.target[id] = t
	}
	for p, o := range cg.owners {
		if o == m.id {
			cg.owners[p] = id
		}
	}
	m.id, m.sent = id, nil
	cg.members[id] = m
	cg.static[*m.instanceID] = id
}

// consumerUpdate applies a heartbeat of a known member: metadata, then the
// group epoch and target when something changed, then reconciliation.
func (c *Coordinator) consumerUpdate(g *group, m *cmember, hb *heartbeat, recs []Record) []Record {
	cg := g.cg
	m.lastSeen = hb.now
	isNew := hb.created
	changed := m.updateMetadata(hb)
	if changed || isNew {
		recs = append(recs, memberMetadataRecord(g.id, m))
	}
	if changed || isNew {
		recs = append(recs, c.bumpEpoch(g, true)...)
	} else if c.refreshSubscriptions(cg, false) {
		recs = append(recs, c.bumpEpoch(g, false)...)
	}
	before := m.snapshot()
	cg.reconcile(m, hb.owned, hb.now)
	if !before.same(m) || isNew {
		recs = append(recs, currentAssignmentRecord(g.id, m))
	}
	if m.state == memberUnrevoked && before.state != memberUnrevoked {
		c.watchConsumer(g, m) // the rebalance timeout now runs
	}
	return recs
}

// updateMetadata applies the request's non-null fields to m and reports
// whether anything that drives the assignment changed.
func (m *cmember) updateMetadata(hb *heartbeat) bool {
	req := hb.req
	m.clientID, m.clientHost = hb.clientID, hb.clientHost
	if req.RackID != nil {
		r := *req.RackID
		m.rackID = &r
	}
	if req.RebalanceTimeoutMillis >= 0 {
		m.rebalanceTimeout = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	}
	changed := false
	if req.SubscribedTopicNames != nil {
		topics := slices.Clone(req.SubscribedTopicNames)
		slices.Sort(topics)
		topics = slices.Compact(topics)
		if !slices.Equal(topics, m.topics) {
			m.topics, changed = topics, true
		}
	}
	if req.SubscribedTopicRegex != nil {
		if *req.SubscribedTopicRegex == "" {
			changed = changed || m.regex != nil
			m.regex, m.re = nil, nil
		} else if m.regex == nil || *m.regex != *req.SubscribedTopicRegex {
			r := *req.SubscribedTopicRegex
			m.regex, m.re, changed = &r, hb.re, true
		}
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != m.assignor {
		m.assignor, changed = *req.ServerAssignor, true
	}
	return changed
}

// consumerLeave handles epochs -1 (leave) and -2 (static member leaving
// for a while, keeping its assignment until its session ends).
func (c *Coordinator) consumerLeave(g *group, hb *heartbeat, recs []Record) ([]Record, *kerr.Error) {
	cg, req := g.cg, hb.req
	m := cg.members[req.MemberID]
	if m == nil {
		return recs, kerr.UnknownMemberID
	}
	if req.MemberEpoch == -2 {
		if m.instanceID == nil || *m.instanceID != *req.InstanceID {
			return recs, kerr.FencedInstanceID
		}
		if !m.staticLeft {
			m.staticLeft, m.prevEpoch, m.epoch = true, m.epoch, -2
		}
		m.lastSeen = hb.now
		return append(recs, currentAssignmentRecord(g.id, m)), nil
	}
	c.cfg.Logger.Info("consumer group member left", "group", g.id, "member", m.id)
	return append(recs, c.removeConsumer(g, m)...), nil
}

// removeConsumer takes m out of the group (left, fenced or expired) and
// recomputes the target for the others.
func (c *Coordinator) removeConsumer(g *group, m *cmember) []Record {
	cg := g.cg
	cg.release(m)
	delete(cg.members, m.id)
	delete(cg.target, m.id)
	if m.instanceID != nil && cg.static[*m.instanceID] == m.id {
		delete(cg.static, *m.instanceID)
	}
	m.token++
	recs := memberTombstones(g.id, m.id)
	return append(recs, c.bumpEpoch(g, true)...)
}

// bumpEpoch starts a new group epoch and computes its target assignment.
// resolve re-resolves the subscriptions first (they changed).
func (c *Coordinator) bumpEpoch(g *group, resolve bool) []Record {
	cg := g.cg
	if resolve {
		c.refreshSubscriptions(cg, true)
	}
	cg.epoch++
	recs := []Record{consumerGroupRecord(g.id, cg)}
	return append(recs, c.computeTarget(g)...)
}

func subset(a, b partSet) bool {
	for p := range a {
		if _, ok := b[p]; !ok {
			return false
		}
	}
	return true
}

// setConsumerState mirrors a KIP-848 group in the classic state the rest
// of the coordinator reads (Empty allows deletes and expiry).
func (c *Coordinator) setConsumerState(g *group, now time.Time) {
	s := Stable
	if len(g.cg.members) == 0 {
		s = Empty
	}
	if g.state != s {
		g.setState(s, now)
	}
}
