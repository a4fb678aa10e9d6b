package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AllocateProducerIds: v0
//
// The broker-to-controller request of KIP-730: a broker that is not the raft
// leader asks the controller for a block of producer ids (controller_client.go)
// when its own block runs out. The controller reserves producerIDBlockSize ids
// for the asking broker through the metadata log; any other node answers
// NOT_CONTROLLER, which the asking broker retries against the new leader.

func init() { register(67, 0, 0, handleAllocateProducerIDs) }

func handleAllocateProducerIDs(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.AllocateProducerIDsRequest)
	resp := req.ResponseKind().(*kmsg.AllocateProducerIDsResponse)
	if req.BrokerID < 0 {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return done(resp)
	}
	blk, err := b.meta.AllocateProducerIDsFor(req.BrokerID, producerIDBlockSize)
	switch {
	case notController(err):
		resp.ErrorCode = kerr.NotController.Code
	case err != nil:
		b.logger.Error("allocate producer ids", "broker_id", req.BrokerID, "err", err)
		resp.ErrorCode = kerr.UnknownServerError.Code
	default:
		resp.ProducerIDStart, resp.ProducerIDLen = blk.First, int32(blk.Size)
	}
	return done(resp)
}
