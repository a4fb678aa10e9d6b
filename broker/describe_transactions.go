package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeTransactions: v0
//
// State, producer id and epoch, timeout, start time and partitions of each
// transactional id; unknown ids get TRANSACTIONAL_ID_NOT_FOUND.

func init() { register(65, 0, 0, handleDescribeTransactions) }

func handleDescribeTransactions(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.DescribeTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range req.TransactionalIDs {
		resp.TransactionStates = append(resp.TransactionStates, b.txns.Describe(id))
	}
	return done(resp)
}
