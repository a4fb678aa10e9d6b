package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConsumerGroupDescribe: v0-1
//
// KIP-848 groups with their epochs, assignor and members (subscriptions,
// current and target assignments). Classic or unknown groups get
// GROUP_ID_NOT_FOUND. Authorized operations are not computed (no ACLs).

func init() { register(69, 0, 1, handleConsumerGroupDescribe) }

func handleConsumerGroupDescribe(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.ConsumerGroupDescribeRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	for _, id := range req.Groups {
		resp.Groups = append(resp.Groups, b.groups.of(id).DescribeConsumerGroup(id))
	}
	return done(resp)
}
