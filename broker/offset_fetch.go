package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetFetch: v1-9
//
// Returns committed offsets (-1 where none), with leader epochs from v5;
// null topics (v2+) return every committed offset of the group. v8+ asks
// for several groups at once. Commits are applied only once durable, so
// require_stable (v7+) never waits. v9's member id and epoch are checked
// for KIP-848 groups (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH) and ignored
// for classic groups.

func init() { register(9, 1, 9, handleOffsetFetch) }

func handleOffsetFetch(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.OffsetFetchRequest)
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if r.version >= 8 {
		for _, rg := range req.Groups {
			g := kmsg.NewOffsetFetchResponseGroup()
			g.Group = rg.Group
			if g.ErrorCode = b.groups.of(rg.Group).CheckFetchMember(rg.Group, rg.MemberID, rg.MemberEpoch); g.ErrorCode == 0 {
				g.Topics, g.ErrorCode = b.groups.of(rg.Group).FetchOffsets(rg.Group, rg.Topics, req.RequireStable)
			}
			resp.Groups = append(resp.Groups, g)
		}
		return done(resp)
	}
	var topics []kmsg.OffsetFetchRequestGroupTopic
	if req.Topics != nil || r.version < 2 {
		topics = []kmsg.OffsetFetchRequestGroupTopic{}
		for _, t := range req.Topics {
			topics = append(topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t.Topic, Partitions: t.Partitions})
		}
	}
	got, code := b.groups.of(req.Group).FetchOffsets(req.Group, topics, req.RequireStable)
	resp.ErrorCode = code
	for _, gt := range got {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = gt.Topic
		for _, gp := range gt.Partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = gp.Partition, gp.Offset, gp.LeaderEpoch, gp.Metadata
			rp.ErrorCode = gp.ErrorCode
			if code != 0 {
				rp.ErrorCode = code // v1 has no group-level code
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return done(resp)
}
