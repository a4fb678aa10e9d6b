package group

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Offset commits and fetches of KIP-848 groups carry the member epoch in
// place of the generation.

// consumerCommitCode is the group-level check of an OffsetCommit to a
// KIP-848 group. Commits without a member (admin tools, -1) are only
// allowed while the group has no members.
func (c *Coordinator) consumerCommitCode(g *group, req *kmsg.OffsetCommitRequest) int16 {
	cg := g.cg
	if req.Generation < 0 && req.MemberID == "" {
		if len(cg.members) > 0 {
			return kerr.UnknownMemberID.Code
		}
		return 0
	}
	m := cg.members[req.MemberID]
	switch {
	case m == nil || m.staticLeft:
		return kerr.UnknownMemberID.Code
	case req.Version < 9:
		return kerr.UnsupportedVersion.Code // members of KIP-848 groups commit with v9+
	case req.Generation > m.epoch:
		return kerr.StaleMemberEpoch.Code
	}
	return 0
}

// commitOwnership returns, for a commit made at an older epoch of the
// member, which partitions it may still commit: those it holds since that
// epoch or earlier (KIP-1251). A commit racing an epoch bump then lands
// instead of failing with STALE_MEMBER_EPOCH. nil means no check.
func (c *Coordinator) commitOwnership(g *group, req *kmsg.OffsetCommitRequest) func(topic string, part int32) bool {
	if g == nil || g.cg == nil || req.MemberID == "" {
		return nil
	}
	m := g.cg.members[req.MemberID]
	if m == nil || req.Generation >= m.epoch {
		return nil
	}
	ids := make(map[string][16]byte, len(g.cg.subscribed))
	for id, t := range g.cg.subscribed {
		ids[t.Name] = id
	}
	epoch := req.Generation
	return func(topic string, part int32) bool {
		id, ok := ids[topic]
		if !ok {
			return false
		}
		p := tp{id, part}
		if e, ok := m.assigned[p]; ok {
			return e <= epoch
		}
		if e, ok := m.revoking[p]; ok {
			return e <= epoch
		}
		return false
	}
}

// CheckFetchMember checks the member id and epoch an OffsetFetch v9+
// carries for a KIP-848 group (classic groups ignore them). Reading
// offsets changes nothing, so an older epoch of a live member is allowed.
func (c *Coordinator) CheckFetchMember(groupID string, memberID *string, epoch int32) int16 {
	if memberID == nil || epoch < 0 {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[groupID]
	if g == nil || g.cg == nil {
		return 0
	}
	m := g.cg.members[*memberID]
	switch {
	case m == nil:
		return kerr.UnknownMemberID.Code
	case epoch > m.epoch:
		return kerr.StaleMemberEpoch.Code
	}
	return 0
}
