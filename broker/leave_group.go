package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker/group"
)

// LeaveGroup: v0-5
//
// v0-2 name one member; v3+ a batch of members by member id and/or
// group.instance.id (KIP-345), each with its own error code. The group
// rebalances without them. v5 reasons are logged.

func init() { register(13, 0, 5, handleLeaveGroup) }

func handleLeaveGroup(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.LeaveGroupRequest)
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if r.version < 3 {
		code, codes := b.groups.of(req.Group).LeaveGroup(req.Group, []group.LeaveMember{{MemberID: req.MemberID}})
		resp.ErrorCode = code
		if code == 0 {
			resp.ErrorCode = codes[0]
		}
		return done(resp)
	}
	leaving := make([]group.LeaveMember, len(req.Members))
	for i, m := range req.Members {
		leaving[i] = group.LeaveMember{MemberID: m.MemberID, InstanceID: m.InstanceID}
		if m.Reason != nil && *m.Reason != "" {
			b.logger.Info("group member leaving", "group", req.Group, "member", m.MemberID, "reason", *m.Reason)
		}
	}
	code, codes := b.groups.of(req.Group).LeaveGroup(req.Group, leaving)
	resp.ErrorCode = code
	if code == 0 {
		for i, m := range req.Members {
			rm := kmsg.NewLeaveGroupResponseMember()
			rm.MemberID, rm.InstanceID, rm.ErrorCode = m.MemberID, m.InstanceID, codes[i]
			resp.Members = append(resp.Members, rm)
		}
	}
	return done(resp)
}
