package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func syncError(code int16) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.ErrorCode = code
	return resp
}

// memberFor checks a request's member against g: the error code for an
// unknown member or a fenced static instance, else the member.
func (g *group) memberFor(memberID string, instanceID *string) (*member, int16) {
	if instanceID != nil {
		if cur, ok := g.static[*instanceID]; ok && cur != memberID {
			return nil, kerr.FencedInstanceID.Code
		}
	}
	m := g.members[memberID]
	if m == nil {
		return nil, kerr.UnknownMemberID.Code
	}
	return m, 0
}

// SyncGroup handles a SyncGroup request. The leader's assignment is written
// to the log before any member hears its share; followers wait for it.
func (c *Coordinator) SyncGroup(req *kmsg.SyncGroupRequest) <-chan *kmsg.SyncGroupResponse {
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[req.Group]
	switch {
	case req.Group == "":
		ch <- syncError(kerr.InvalidGroupID.Code)
		return ch
	case c.closed:
		ch <- syncError(c.closedErr.Code)
		return ch
	case g == nil:
		ch <- syncError(kerr.UnknownMemberID.Code)
		return ch
	}
	m, code := g.memberFor(req.MemberID, req.InstanceID)
	switch {
	case code != 0:
	case req.Generation != g.generation:
		code = kerr.IllegalGeneration.Code
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && *req.Protocol != g.protocol:
		code = kerr.InconsistentGroupProtocol.Code
	case g.state == Empty:
		code = kerr.UnknownMemberID.Code
	case g.state == PreparingRebalance:
		code = kerr.RebalanceInProgress.Code
	}
	if code != 0 {
		ch <- syncError(code)
		return ch
	}
	m.lastSeen = time.Now()
	delete(g.awaitingSync, m.id)
	if g.state == Stable {
		ch <- g.syncResponse(m)
		return ch
	}
	// CompletingRebalance: wait for the leader's assignment.
	if m.sync != nil {
		m.sync <- syncError(kerr.RebalanceInProgress.Code)
	}
	m.sync = ch
	if m.id != g.leader {
		return ch
	}
	assigned := map[string][]byte{}
	for _, a := range req.GroupAssignment {
		assigned[a.MemberID] = a.MemberAssignment
	}
	for _, o := range g.members {
		o.assignment = assigned[o.id]
	}
	gen := g.generation
	wait := c.persistGroup(g)
	go func() {
		err := <-wait
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.groups[g.id] != g || g.generation != gen || g.state != CompletingRebalance {
			return
		}
		if err != nil {
			c.cfg.Logger.Error("write group metadata", "group", g.id, "err", err)
			for _, o := range g.members {
				o.assignment = nil
				if o.sync != nil {
					o.sync <- syncError(kerr.CoordinatorNotAvailable.Code)
					o.sync = nil
				}
			}
			c.prepareRebalance(g)
			return
		}
		g.setState(Stable, time.Now())
		c.cfg.Rebalanced(time.Since(g.rebalanceAt))
		for _, o := range g.members {
			if o.sync != nil {
				o.sync <- g.syncResponse(o)
				o.sync = nil
			}
		}
	}()
	return ch
}

func (g *group) syncResponse(m *member) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	pt, p := g.protocolType, g.protocol
	resp.ProtocolType, resp.Protocol = &pt, &p
	resp.MemberAssignment = m.assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	return resp
}

// Heartbeat handles a Heartbeat request and returns its error code.
func (c *Coordinator) Heartbeat(req *kmsg.HeartbeatRequest) int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[req.Group]
	switch {
	case req.Group == "":
		return kerr.InvalidGroupID.Code
	case c.closed:
		return c.closedErr.Code
	case g == nil:
		return kerr.UnknownMemberID.Code
	}
	m, code := g.memberFor(req.MemberID, req.InstanceID)
	switch {
	case code != 0:
		return code
	case req.Generation != g.generation:
		return kerr.IllegalGeneration.Code
	case g.state == Empty:
		return kerr.UnknownMemberID.Code
	}
	m.lastSeen = time.Now()
	if g.state == PreparingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// LeaveMember is one member leaving: by member id, by group.instance.id,
// or both.
type LeaveMember struct {
	MemberID   string
	InstanceID *string
}

// LeaveGroup removes members and returns the group's error code and one
// code per member.
func (c *Coordinator) LeaveGroup(groupID string, leaving []LeaveMember) (int16, []int16) {
	codes := make([]int16, len(leaving))
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[groupID]
	switch {
	case groupID == "":
		return kerr.InvalidGroupID.Code, codes
	case c.closed:
		return c.closedErr.Code, codes
	case g == nil:
		for i := range codes {
			codes[i] = kerr.UnknownMemberID.Code
		}
		return 0, codes
	}
	removed := false
	for i, l := range leaving {
		if l.InstanceID != nil {
			cur, ok := g.static[*l.InstanceID]
			switch {
			case !ok:
				codes[i] = kerr.UnknownMemberID.Code
			case l.MemberID != "" && l.MemberID != cur:
				codes[i] = kerr.FencedInstanceID.Code
			default:
				c.removeMember(g, g.members[cur])
				removed = true
			}
			continue
		}
		if t, ok := g.pending[l.MemberID]; ok {
			t.Stop()
			delete(g.pending, l.MemberID)
			removed = true
			continue
		}
		m := g.members[l.MemberID]
		if m == nil {
			codes[i] = kerr.UnknownMemberID.Code
			continue
		}
		c.removeMember(g, m)
		removed = true
	}
	if removed {
		c.memberGone(g)
	}
	return 0, codes
}
