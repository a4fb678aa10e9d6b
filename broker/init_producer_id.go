package broker

import (
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId: v0-5
//
// Idempotent producers (null transactional id) get a producer id no client
// has had, from blocks reserved through the metadata log (producer_ids.go),
// at epoch 0. A request carrying the producer id and epoch it already holds
// (v3+, KIP-360: the client resets after an error it cannot otherwise
// recover from) gets the same id at the next epoch, which fences its own
// in-flight batches of the old epoch; when the epoch would overflow, or the
// id was never handed out, it gets a fresh id at epoch 0. Kafka itself
// answers a fresh id every time for idempotent producers; both are valid
// answers for every client.
//
// Transactional producers (v0+ with a transactional id) get their id and
// a bumped epoch from the transaction coordinator (package txn), which
// fences older producers of the id, aborting an open transaction first
// (CONCURRENT_TRANSACTIONS: retry); a timeout above
// transaction.max.timeout.ms is INVALID_TRANSACTION_TIMEOUT. An empty
// transactional id is INVALID_REQUEST, as in Kafka.

func init() { register(22, 0, 5, handleInitProducerID) }

func handleInitProducerID(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	switch {
	case req.TransactionalID != nil && *req.TransactionalID == "":
		resp.ErrorCode = kerr.InvalidRequest.Code
	case req.TransactionalID != nil && !b.txnTopicReady():
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
	case req.TransactionalID != nil:
		timeout := time.Duration(req.TransactionTimeoutMillis) * time.Millisecond
		resp.ProducerID, resp.ProducerEpoch, resp.ErrorCode = b.txns.InitProducerID(*req.TransactionalID, timeout, req.ProducerID, req.ProducerEpoch)
	case (req.ProducerID < 0) != (req.ProducerEpoch < 0):
		resp.ErrorCode = kerr.InvalidRequest.Code // an id without an epoch, or the reverse
	case req.ProducerID >= 0 && req.ProducerID < b.meta.NextProducerID() && req.ProducerEpoch < math.MaxInt16-1 && !b.txns.Transactional(req.ProducerID):
		resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch+1
	default:
		id, err := b.pids.nextID()
		if err != nil {
			b.logger.Error("init producer id", "err", err)
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code // retriable: the metadata quorum is busy or gone
			break
		}
		resp.ProducerID, resp.ProducerEpoch = id, 0
	}
	return done(resp)
}
