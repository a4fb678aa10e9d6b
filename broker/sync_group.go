package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup: v0-5
//
// The leader hands in the assignment, which is written to
// __consumer_offsets (fsynced) before any member hears its share; the
// followers' responses wait for it on the connection's writer. v5 checks
// the protocol type and name against the group's.

func init() { register(14, 0, 5, handleSyncGroup) }

func handleSyncGroup(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.SyncGroupRequest)
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	ch := b.groups.of(req.Group).SyncGroup(req)
	return &reply{resp: resp, ready: func() {
		v := resp.Version
		select {
		case got := <-ch:
			*resp = *got
		case <-b.closing:
			*resp = *kmsg.NewPtrSyncGroupResponse()
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		}
		resp.Version = v
		if resp.MemberAssignment == nil {
			resp.MemberAssignment = []byte{}
		}
	}}, nil
}
