package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups: v0-4
//
// Every classic group this coordinator holds, including groups that only
// hold offsets (protocol type ""); v4 filters by state names.
//
// Not yet: v5's type filter (KIP-848 groups).

func init() { register(16, 0, 4, handleListGroups) }

func handleListGroups(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	resp.Groups = b.groups.ListGroups(req.StatesFilter)
	return done(resp)
}
