package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// EndTxn: v0-4
//
// Commits or aborts the producer's transaction: the coordinator writes
// PrepareCommit/PrepareAbort, a marker into every partition of the
// transaction (and applies or drops its transactional offset commits), then
// CompleteCommit/CompleteAbort, and only then answers. A retried end that
// already happened succeeds; ending a transaction that is not ongoing is
// INVALID_TXN_STATE.
//
// Not yet: v5 (KIP-890 part 2, a new epoch per transaction).

func init() { register(26, 0, 4, handleEndTxn) }

func handleEndTxn(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.EndTxnRequest)
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	switch {
	case req.TransactionalID == "":
		resp.ErrorCode = kerr.InvalidRequest.Code
	case !b.txnTopicReady():
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
	default:
		resp.ErrorCode = b.txns.EndTxn(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit)
	}
	return done(resp)
}
