package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups: v0-2
//
// Deletes groups without members (NON_EMPTY_GROUP otherwise,
// GROUP_ID_NOT_FOUND for unknown ones) with all their committed offsets,
// writing tombstones to __consumer_offsets and waiting for the fsync.

func init() { register(42, 0, 2, handleDeleteGroups) }

func handleDeleteGroups(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	codes, finish := b.groups.DeleteGroups(req.Groups)
	return &reply{resp: resp, ready: func() {
		finish()
		for i, id := range req.Groups {
			g := kmsg.NewDeleteGroupsResponseGroup()
			g.Group, g.ErrorCode = id, codes[i]
			resp.Groups = append(resp.Groups, g)
		}
	}}, nil
}
