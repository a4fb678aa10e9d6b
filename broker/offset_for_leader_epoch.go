package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetForLeaderEpoch: v2-4
//
// Returns the end offset of the requested leader epoch from the leader-epoch
// history of the partition's log (leader-epoch-checkpoint): the largest
// epoch at or below the requested one and the first offset after it, the
// log end offset for the current epoch, (-1, -1) below the oldest epoch
// held. Clients use it after a leader change to detect truncation
// (KIP-320); replicas (replica id >= 0) before Fetch v12 to find where
// they diverge. Only the leader answers.

func init() { register(23, 2, 4, handleOffsetForLeaderEpoch) }

func handleOffsetForLeaderEpoch(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			p, code := b.leaderPartition(rt.Topic, rp.Partition)
			switch {
			case p == nil:
				sp.ErrorCode = code
			default:
				if sp.ErrorCode = checkLeaderEpoch(p, rp.CurrentLeaderEpoch); sp.ErrorCode == 0 {
					sp.LeaderEpoch, sp.EndOffset = p.log.EndOffsetForEpoch(rp.LeaderEpoch)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return done(resp)
}
