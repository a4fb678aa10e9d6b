package txn

import (
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Describe answers DescribeTransactions for one transactional id.
func (c *Coordinator) Describe(id string) kmsg.DescribeTransactionsResponseTransactionState {
	d := kmsg.NewDescribeTransactionsResponseTransactionState()
	d.TransactionalID, d.ProducerID, d.ProducerEpoch, d.StartTimestamp = id, -1, -1, -1
	c.mu.RLock()
	defer c.mu.RUnlock()
	t := c.txns[id]
	switch {
	case c.ownCode(id) != 0:
		d.ErrorCode = c.ownCode(id)
		return d
	case t == nil:
		d.ErrorCode = kerr.TransactionalIDNotFound.Code
		return d
	}
	d.State, d.TimeoutMillis = t.state.String(), int32(t.timeout/time.Millisecond)
	d.ProducerID, d.ProducerEpoch = t.producerID, t.epoch
	if !t.started.IsZero() {
		d.StartTimestamp = t.started.UnixMilli()
	}
	for _, tp := range t.sortedPartitions() {
		dt := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
		dt.Topic, dt.Partitions = tp.topic, tp.parts
		d.Topics = append(d.Topics, dt)
	}
	return d
}

// ListFilter selects transactions for ListTransactions; empty fields
// match everything.
type ListFilter struct {
	States      []string
	ProducerIDs []int64
	MinDuration time.Duration  // v1: ongoing for at least this long
	IDPattern   *regexp.Regexp // v2: transactional ids matching
}

// List answers ListTransactions, sorted by transactional id.
func (c *Coordinator) List(f ListFilter) []kmsg.ListTransactionsResponseTransactionState {
	c.mu.RLock()
	defer c.mu.RUnlock()
	now := time.Now()
	var out []kmsg.ListTransactionsResponseTransactionState
	for id, t := range c.txns {
		switch {
		case len(f.States) > 0 && !slices.Contains(f.States, t.state.String()):
			continue
		case len(f.ProducerIDs) > 0 && !slices.Contains(f.ProducerIDs, t.producerID):
			continue
		case f.MinDuration > 0 && (t.state != Ongoing || now.Sub(t.started) < f.MinDuration):
			continue
		case f.IDPattern != nil && !f.IDPattern.MatchString(id):
			continue
		}
		l := kmsg.NewListTransactionsResponseTransactionState()
		l.TransactionalID, l.ProducerID, l.TransactionState = id, t.producerID, t.state.String()
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b kmsg.ListTransactionsResponseTransactionState) int {
		return strings.Compare(a.TransactionalID, b.TransactionalID)
	})
	return out
}
