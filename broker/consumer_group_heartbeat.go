package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConsumerGroupHeartbeat: v0-1
//
// The next-generation consumer group protocol (KIP-848): members join
// (epoch 0), heartbeat with their subscription (topic names or, v1, a
// regular expression matched against whole topic names) and owned
// partitions, and leave (-1, static -2); the coordinator assigns with the
// uniform (default) or range assignor and revokes before it assigns. v0
// lets the coordinator name the member; v1 members name themselves.
// Every state change is written to __consumer_offsets in Kafka's record
// layout and fsynced before the answer.
//
// Not yet: mixing classic and KIP-848 members in one group (a classic
// JoinGroup to a KIP-848 group with members gets
// INCONSISTENT_GROUP_PROTOCOL; empty groups convert either way), rack-aware
// assignment.

func init() { register(68, 0, 1, handleConsumerGroupHeartbeat) }

func handleConsumerGroupHeartbeat(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.ConsumerGroupHeartbeatRequest)
	if !b.offsetsTopicReady() {
		resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode, resp.MemberEpoch = kerr.CoordinatorNotAvailable.Code, -1
		return done(resp)
	}
	resp, finish := b.groups.of(req.Group).ConsumerHeartbeat(req, r.clientID, clientHost(r))
	return &reply{resp: resp, ready: finish}, nil
}
