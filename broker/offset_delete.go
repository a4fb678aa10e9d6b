package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetDelete: v0
//
// Deletes committed offsets of a group (tombstones, fsynced). Topics that a
// live member of a consumer group subscribes to are refused with
// GROUP_SUBSCRIBED_TO_TOPIC; groups of other protocol types with members
// with NON_EMPTY_GROUP; unknown groups get GROUP_ID_NOT_FOUND.

func init() { register(47, 0, 0, handleOffsetDelete) }

func handleOffsetDelete(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.OffsetDeleteRequest)
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	code, topics, finish := b.groups.of(req.Group).DeleteOffsets(req.Group, req.Topics)
	resp.ErrorCode, resp.Topics = code, topics
	return &reply{resp: resp, ready: finish}, nil
}
