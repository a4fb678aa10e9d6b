package broker

import (
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker/txn"
)

// ListTransactions: v0-2
//
// Transactional ids filtered by state and producer id, v1 by how long the
// transaction has been ongoing, v2 by a regular expression on the id (RE2,
// matching the whole id). A bad pattern is INVALID_REGULAR_EXPRESSION.

func init() { register(66, 0, 2, handleListTransactions) }

func handleListTransactions(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.ListTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	f := txn.ListFilter{States: req.StateFilters, ProducerIDs: req.ProducerIDFilters}
	if req.DurationFilterMillis > 0 {
		f.MinDuration = time.Duration(req.DurationFilterMillis) * time.Millisecond
	}
	if p := req.TransactionalIDPattern; p != nil && *p != "" {
		re, err := regexp.Compile("^(?:" + *p + ")$")
		if err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return done(resp)
		}
		f.IDPattern = re
	}
	resp.TransactionStates = b.txns.List(f)
	resp.UnknownStateFilters = []string{}
	for _, s := range req.StateFilters {
		if !knownTxnState(s) {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, s)
		}
	}
	return done(resp)
}

func knownTxnState(s string) bool {
	for _, k := range kmsg.TransactionStateStrings() {
		if k == s {
			return true
		}
	}
	return false
}
