package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker/txn"
)

// AddOffsetsToTxn: v0-3
//
// Adds the group's partition of __consumer_offsets to the transaction, so
// the offsets a TxnOffsetCommit writes there become visible with the
// transaction's commit marker (and vanish with an abort).

func init() { register(25, 0, 3, handleAddOffsetsToTxn) }

func handleAddOffsetsToTxn(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.AddOffsetsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	switch {
	case req.Group == "":
		resp.ErrorCode = kerr.InvalidGroupID.Code
	case !b.offsetsTopicReady():
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
	default:
		part := int32(groupPartition(req.Group, b.partitionCount(&b.offsetsCT)))
		resp.ErrorCode = b.addToTxn(req.TransactionalID, req.ProducerID, req.ProducerEpoch, []txn.TP{{Topic: offsetsTopic, Partition: part}}, false)[0]
	}
	return done(resp)
}
