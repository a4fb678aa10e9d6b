package group

import (
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup handles a JoinGroup request of the given version. The channel
// receives the response once the join phase ends (at once for errors and
// for the v4+ MEMBER_ID_REQUIRED step). Its version is left to the caller.
func (c *Coordinator) JoinGroup(req *kmsg.JoinGroupRequest, version int16, clientID, clientHost string) <-chan *kmsg.JoinGroupResponse {
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	fail := func(code int16) <-chan *kmsg.JoinGroupResponse {
		ch <- joinError(req.MemberID, code)
		return ch
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	rebalance := time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	if version == 0 {
		rebalance = session
	}
	switch {
	case req.Group == "":
		return fail(kerr.InvalidGroupID.Code)
	case session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout:
		return fail(kerr.InvalidSessionTimeout.Code)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fail(c.closedErr.Code)
	}
	now := time.Now()
	g := c.groups[req.Group]
	if g == nil {
		if req.MemberID != "" {
			return fail(kerr.UnknownMemberID.Code)
		}
		g = newGroup(req.Group, now)
		c.groups[req.Group] = g
	}
	if g.cg != nil {
		if len(g.cg.members) > 0 {
			return fail(kerr.InconsistentGroupProtocol.Code) // a KIP-848 group with members
		}
		c.cfg.Log.Append(g.id, groupTombstones(g.id)) // an empty KIP-848 group becomes classic, keeping its offsets
		g.cg, g.protocolType = nil, ""
	}
	defer c.dropIfUnused(g)
	if !c.acceptJoin(g, req) {
		c.refuseJoin(g, req, ch)
		return ch
	}
	if !g.supports(req.ProtocolType, req.Protocols, req.MemberID) {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	j := joining{req: req, version: version, clientID: clientID, clientHost: clientHost, session: session, rebalance: rebalance, ch: ch}
	if req.MemberID == "" {
		c.joinNew(g, &j)
	} else {
		c.joinKnown(g, &j)
	}
	return ch
}

// joining is one JoinGroup in progress.
type joining struct {
	req                  *kmsg.JoinGroupRequest
	version              int16
	clientID, clientHost string
	session, rebalance   time.Duration
	ch                   chan *kmsg.JoinGroupResponse
}

func joinError(memberID string, code int16) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.ErrorCode, resp.Generation, resp.MemberID = code, -1, memberID
	empty := ""
	resp.Protocol = &empty
	return resp
}

// joinNew handles a JoinGroup without a member id.
func (c *Coordinator) joinNew(g *group, j *joining) {
	id := newMemberID(j.clientID)
	if inst := j.req.InstanceID; inst != nil {
		if oldID, ok := g.static[*inst]; ok {
			c.replaceStatic(g, g.members[oldID], id, j)
			return
		}
		c.addMember(g, id, j)
		c.rebalanceOrComplete(g)
		return
	}
	if j.version >= 4 {
		// KIP-394: the member must come back with this id, so that a
		// client that never hears the answer leaves no ghost member.
		g.pending[id] = time.AfterFunc(j.session, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if _, ok := g.pending[id]; ok && c.groups[g.id] == g {
				delete(g.pending, id)
				c.tryCompleteJoin(g)
				c.dropIfUnused(g)
			}
		})
		j.ch <- joinError(id, kerr.MemberIDRequired.Code)
		return
	}
	c.addMember(g, id, j)
	c.rebalanceOrComplete(g)
}

// joinKnown handles a JoinGroup with a member id.
func (c *Coordinator) joinKnown(g *group, j *joining) {
	id := j.req.MemberID
	if t, ok := g.pending[id]; ok {
		t.Stop()
		delete(g.pending, id)
		c.addMember(g, id, j)
		c.rebalanceOrComplete(g)
		return
	}
	if inst := j.req.InstanceID; inst != nil {
		if cur, ok := g.static[*inst]; ok && cur != id {
			j.ch <- joinError(id, kerr.FencedInstanceID.Code)
			return
		}
	}
	m := g.members[id]
	if m == nil || g.state == Empty || g.state == Dead {
		j.ch <- joinError(id, kerr.UnknownMemberID.Code)
		return
	}
	same := m.sameProtocols(j.req.Protocols)
	switch g.state {
	case PreparingRebalance:
		c.updateMember(m, j)
		c.tryCompleteJoin(g)
	case CompletingRebalance:
		if same {
			// The member lost the answer: give it the same one again.
			j.ch <- g.joinResponse(m)
			return
		}
		c.updateMember(m, j)
		c.prepareRebalance(g)
	case Stable:
		if same && m.id != g.leader {
			j.ch <- g.joinResponse(m)
			return
		}
		c.updateMember(m, j)
		c.prepareRebalance(g)
	}
}

// replaceStatic gives a known group.instance.id a new member id (KIP-345):
// the old member is fenced, and a stable group with unchanged protocols
// goes on without a rebalance.
func (c *Coordinator) replaceStatic(g *group, old *member, id string, j *joining) {
	if old.join != nil {
		old.join <- joinError(old.id, kerr.FencedInstanceID.Code)
		old.join = nil
	}
	if old.sync != nil {
		old.sync <- syncError(kerr.FencedInstanceID.Code)
		old.sync = nil
	}
	delete(g.members, old.id)
	m := *old
	m.id = id
	m.lastSeen = time.Now()
	g.members[id] = &m
	g.static[*j.req.InstanceID] = id
	if g.leader == old.id {
		g.leader = id
	}
	c.watchSession(g, &m)
	if g.state == Stable && m.sameProtocols(j.req.Protocols) {
		m.clientID, m.clientHost = j.clientID, j.clientHost
		m.sessionTimeout, m.rebalanceTimeout = j.session, j.rebalance
		resp := g.joinResponse(&m)
		// v9 (KIP-814): the leader gets the members but must not assign
		// again; before v9 its SyncGroup simply gets the stored assignment.
		resp.SkipAssignment = m.id == g.leader
		wait := c.persistGroup(g)
		go func() {
			if err := <-wait; err != nil {
				resp = joinError(id, kerr.CoordinatorNotAvailable.Code)
			}
			j.ch <- resp
		}()
		return
	}
	c.updateMember(&m, j)
	c.rebalanceOrComplete(g)
}

func (c *Coordinator) addMember(g *group, id string, j *joining) {
	if len(g.members) == 0 {
		g.protocolType = j.req.ProtocolType
	}
	g.joinOrder++
	m := &member{id: id, instanceID: j.req.InstanceID, order: g.joinOrder}
	c.updateMember(m, j)
	g.members[id] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = id
	}
	if g.leader == "" {
		g.leader = id
	}
	if g.state == Empty || g.state == PreparingRebalance {
		g.newMemberSet = true
	}
	c.watchSession(g, m)
}

func (c *Coordinator) updateMember(m *member, j *joining) {
	if m.join != nil && m.join != j.ch {
		m.join <- joinError(m.id, kerr.RebalanceInProgress.Code)
	}
	m.clientID, m.clientHost = j.clientID, j.clientHost
	m.protocols = j.req.Protocols
	m.sessionTimeout, m.rebalanceTimeout = j.session, j.rebalance
	m.join = j.ch
	m.lastSeen = time.Now()
}

// rebalanceOrComplete starts a rebalance, or checks whether the one under
// way may end now that a member (re)joined.
func (c *Coordinator) rebalanceOrComplete(g *group) {
	if g.state == PreparingRebalance {
		c.tryCompleteJoin(g)
		return
	}
	c.prepareRebalance(g)
}

// prepareRebalance moves g to PreparingRebalance: members must rejoin.
func (c *Coordinator) prepareRebalance(g *group) {
	now := time.Now()
	if g.state == CompletingRebalance {
		for _, m := range g.members {
			m.assignment = nil
			if m.sync != nil {
				m.sync <- syncError(kerr.RebalanceInProgress.Code)
				m.sync = nil
			}
		}
	}
	wasEmpty := g.state == Empty
	if g.state != PreparingRebalance && g.state != CompletingRebalance {
		g.rebalanceAt = now
	}
	g.setState(PreparingRebalance, now)
	g.awaitingSync = nil
	g.token++
	if g.timer != nil {
		g.timer.Stop()
	}
	token := g.token
	timeout := g.rebalanceTimeout()
	if wasEmpty && c.cfg.InitialRebalanceDelay > 0 {
		// group.initial.rebalance.delay.ms: wait for more members, longer
		// while they keep coming, never past the rebalance timeout.
		delay := min(c.cfg.InitialRebalanceDelay, timeout)
		g.initialLeft = timeout - delay
		g.newMemberSet = false
		g.initial = true
		g.timer = time.AfterFunc(delay, func() { c.initialDelayDone(g, token) })
		return
	}
	g.timer = time.AfterFunc(timeout, func() { c.rebalanceTimedOut(g, token) })
	c.tryCompleteJoin(g)
}

func (c *Coordinator) initialDelayDone(g *group, token int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.groups[g.id] != g || g.token != token {
		return
	}
	if g.newMemberSet && g.initialLeft > 0 {
		delay := min(c.cfg.InitialRebalanceDelay, g.initialLeft)
		g.initialLeft -= delay
		g.newMemberSet = false
		g.timer = time.AfterFunc(delay, func() { c.initialDelayDone(g, token) })
		return
	}
	c.completeJoin(g)
}

func (c *Coordinator) rebalanceTimedOut(g *group, token int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.groups[g.id] != g || g.token != token {
		return
	}
	c.completeJoin(g)
}

// tryCompleteJoin ends the join phase when every member has rejoined,
// unless the initial delay still runs.
func (c *Coordinator) tryCompleteJoin(g *group) {
	if g.state != PreparingRebalance || !g.allJoined() {
		return
	}
	if g.initial {
		return // the initial delay ends the join phase
	}
	c.completeJoin(g)
}

// completeJoin ends the join phase: members that did not rejoin are
// removed, the generation advances, and every waiting JoinGroup is answered
// (the leader with the members' metadata).
func (c *Coordinator) completeJoin(g *group) {
	if g.state != PreparingRebalance {
		return
	}
	g.token++
	g.initialLeft = 0
	g.initial = false
	if g.timer != nil {
		g.timer.Stop()
	}
	for _, m := range g.members {
		if m.join == nil {
			c.removeMember(g, m)
		}
	}
	for id, t := range g.pending {
		t.Stop()
		delete(g.pending, id)
	}
	g.generation++
	now := time.Now()
	if len(g.members) == 0 {
		g.protocol, g.leader = "", ""
		g.setState(Empty, now)
		c.persistGroup(g)
		return
	}
	g.protocol = g.selectProtocol()
	if g.members[g.leader] == nil {
		g.leader = g.sortedMembers()[0].id
	}
	g.setState(CompletingRebalance, now)
	g.awaitingSync = map[string]bool{}
	for _, m := range g.members {
		m.join <- g.joinResponse(m)
		m.join = nil
		m.lastSeen = now
		g.awaitingSync[m.id] = true
	}
	// Members that never send SyncGroup (a leader that died after its
	// join) are dropped after the rebalance timeout, so the group does not
	// wait for them forever.
	token := g.token
	g.timer = time.AfterFunc(g.rebalanceTimeout(), func() { c.syncTimedOut(g, token) })
}

func (c *Coordinator) syncTimedOut(g *group, token int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.groups[g.id] != g || g.token != token || len(g.awaitingSync) == 0 {
		return
	}
	for id := range g.awaitingSync {
		if m := g.members[id]; m != nil {
			c.cfg.Logger.Info("group member did not sync in time", "group", g.id, "member", id)
			c.removeMember(g, m)
		}
	}
	g.awaitingSync = nil
	c.memberGone(g)
}

// joinResponse is m's answer for the current generation.
func (g *group) joinResponse(m *member) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Generation = g.generation
	pt, p := g.protocolType, g.protocol
	resp.ProtocolType, resp.Protocol = &pt, &p
	resp.LeaderID, resp.MemberID = g.leader, m.id
	if m.id == g.leader {
		for _, o := range g.sortedMembers() {
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID, rm.InstanceID, rm.ProtocolMetadata = o.id, o.instanceID, o.metadata(g.protocol)
			resp.Members = append(resp.Members, rm)
		}
	}
	return resp
}

func (g *group) sortedMembers() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].order < ms[j].order })
	return ms
}

// removeMember takes m out of g, answering whatever it waits on.
func (c *Coordinator) removeMember(g *group, m *member) {
	if m.join != nil {
		m.join <- joinError(m.id, kerr.UnknownMemberID.Code)
		m.join = nil
	}
	if m.sync != nil {
		m.sync <- syncError(kerr.UnknownMemberID.Code)
		m.sync = nil
	}
	delete(g.members, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		if ms := g.sortedMembers(); len(ms) > 0 {
			g.leader = ms[0].id
		}
	}
}

// memberGone reacts to members leaving: a settled group rebalances, a
// rebalancing one may now be complete.
func (c *Coordinator) memberGone(g *group) {
	switch g.state {
	case Stable, CompletingRebalance:
		c.prepareRebalance(g)
	case PreparingRebalance:
		c.tryCompleteJoin(g)
	}
}
