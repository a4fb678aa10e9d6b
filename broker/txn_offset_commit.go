package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TxnOffsetCommit: v0-3
//
// Offsets a transaction commits for a group: the producer must have added
// the group's __consumer_offsets partition to its ongoing transaction
// (AddOffsetsToTxn; checked with the transaction coordinator, KIP-890's
// idea), v3 members are checked against the group (KIP-447). The offsets
// are written as a transactional batch and become the group's offsets
// with the transaction's commit marker, or vanish with an abort.

func init() { register(28, 0, 3, handleTxnOffsetCommit) }

func handleTxnOffsetCommit(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.TxnOffsetCommitRequest)
	var resp *kmsg.TxnOffsetCommitResponse
	finish := func() {}
	code := int16(0)
	switch {
	case req.Group == "":
		code = kerr.InvalidGroupID.Code
	case !b.offsetsTopicReady() || !b.txnTopicReady():
		code = kerr.CoordinatorNotAvailable.Code
	default:
		// Checked and written under the transaction coordinator's lock, as
		// transactional produce is: the transaction cannot end (its marker
		// be written) between the check and the write.
		part := groupPartition(req.Group, b.partitionCount(&b.offsetsCT))
		code = b.txns.AppendVerified(req.ProducerID, req.ProducerEpoch, offsetsTopic, int32(part), func() int16 {
			resp, finish = b.groups.of(req.Group).CommitTxnOffsets(req)
			return 0
		})
	}
	if code != 0 {
		resp = req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewTxnOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return done(resp)
	}
	return &reply{resp: resp, ready: finish}, nil
}
