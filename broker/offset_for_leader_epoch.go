package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetForLeaderEpoch: v2-4
//
// Returns the end offset of the requested leader epoch: the log end offset
// for the current epoch, undefined (-1, -1) for an epoch above it. Clients
// use it after a leader change to detect truncation (KIP-320).
//
// Not yet: the leader-epoch history (leader-epoch-checkpoint) that answers
// for epochs below the current one; a single node never changes epochs, so
// every batch it holds carries the current one.

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
			p := b.partition(rt.Topic, rp.Partition)
			switch {
			case p == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				if sp.ErrorCode = checkLeaderEpoch(p, rp.CurrentLeaderEpoch); sp.ErrorCode == 0 {
					if epoch := p.epoch.Load(); rp.LeaderEpoch <= epoch {
						sp.LeaderEpoch, sp.EndOffset = epoch, p.log.EndOffset()
					}
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return done(resp)
}
