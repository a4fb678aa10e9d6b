package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups: v0-5
//
// Every group this coordinator holds, including groups that only hold
// offsets (protocol type ""); v4 filters by state names (classic states,
// and Empty/Assigning/Reconciling/Stable for KIP-848 groups), v5 by group
// type ("classic", "consumer") and reports each group's type.

func init() { register(16, 0, 5, handleListGroups) }

func handleListGroups(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	resp.Groups = b.groups.ListGroups(req.StatesFilter, req.TypesFilter)
	return done(resp)
}
