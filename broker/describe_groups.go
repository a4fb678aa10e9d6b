package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups: v0-5
//
// State, protocol type and chosen protocol, and members (client id, host,
// static instance id from v4); member metadata and assignments are given
// for Stable groups. Unknown groups are described as Dead, as Kafka does.
//
// Not yet: authorized operations (no ACLs yet; always "not requested").

func init() { register(15, 0, 5, handleDescribeGroups) }

func handleDescribeGroups(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		resp.Groups = append(resp.Groups, b.groups.of(id).DescribeGroup(id))
	}
	return done(resp)
}
