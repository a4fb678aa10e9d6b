package group

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// group.max.size (KIP-389): a classic group takes at most Config.MaxSize
// members. A JoinGroup that would take it past the limit is refused with
// GROUP_MAX_SIZE_REACHED, decided as Kafka's acceptJoiningMember decides:
//
//   - Empty: always accepted (the join starts the first rebalance).
//   - PreparingRebalance: a member already waiting in JoinGroup is
//     accepted; any other only while fewer than MaxSize members wait.
//     Counting the waiting members rather than the members is what sheds a
//     group that is over the limit (after the limit was lowered): the last
//     members to rejoin are refused and removed, and those that do not
//     rejoin are dropped when the join phase ends.
//   - CompletingRebalance, Stable: a member of the group is accepted, a new
//     one while the group has fewer than MaxSize members.
//
// One departure: a static member that comes back with an unknown member id
// under a known group.instance.id replaces its old self without adding a
// member, so in CompletingRebalance and Stable it is accepted even when
// the group is full (Kafka refuses it, which makes a full group of static
// members unable to restart a single instance).

// acceptJoin reports whether g takes the JoinGroup req.
func (c *Coordinator) acceptJoin(g *group, req *kmsg.JoinGroupRequest) bool {
	limit := c.cfg.MaxSize
	if limit <= 0 {
		return true
	}
	switch g.state {
	case Empty, Dead:
		return true
	case PreparingRebalance:
		if m := g.members[req.MemberID]; m != nil && m.join != nil {
			return true
		}
		return g.awaitingJoin() < limit
	default:
		if g.members[req.MemberID] != nil {
			return true
		}
		if req.MemberID == "" && req.InstanceID != nil {
			if _, ok := g.static[*req.InstanceID]; ok {
				return true
			}
		}
		return len(g.members) < limit
	}
}

// refuseJoin removes the member a refused JoinGroup named, if any, as
// Kafka does, and answers GROUP_MAX_SIZE_REACHED without a member id.
func (c *Coordinator) refuseJoin(g *group, req *kmsg.JoinGroupRequest, ch chan *kmsg.JoinGroupResponse) {
	if t, ok := g.pending[req.MemberID]; ok {
		t.Stop()
		delete(g.pending, req.MemberID)
	}
	if m := g.members[req.MemberID]; m != nil {
		c.cfg.Logger.Info("group member removed: group is full", "group", g.id, "member", m.id, "max_size", c.cfg.MaxSize)
		c.removeMember(g, m)
	}
	c.tryCompleteJoin(g)
	ch <- joinError("", kerr.GroupMaxSizeReached.Code)
}

// awaitingJoin counts the members with a JoinGroup waiting.
func (g *group) awaitingJoin() int {
	n := 0
	for _, m := range g.members {
		if m.join != nil {
			n++
		}
	}
	return n
}

// rebalanceIfOverCapacity starts a rebalance of a loaded group with more
// members than MaxSize, so that it sheds the excess (see acceptJoin).
func (c *Coordinator) rebalanceIfOverCapacity(g *group) {
	if c.cfg.MaxSize <= 0 || len(g.members) <= c.cfg.MaxSize || g.state != Stable {
		return
	}
	c.cfg.Logger.Info("loaded group is over group.max.size: rebalancing", "group", g.id, "members", len(g.members), "max_size", c.cfg.MaxSize)
	c.prepareRebalance(g)
}
