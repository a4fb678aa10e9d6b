package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat: v0-4
//
// Keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to
// rejoin, ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID / FENCED_INSTANCE_ID that
// it was fenced out.

func init() { register(12, 0, 4, handleHeartbeat) }

func handleHeartbeat(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.HeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	resp.ErrorCode = b.groups.of(req.Group).Heartbeat(req)
	return done(resp)
}
