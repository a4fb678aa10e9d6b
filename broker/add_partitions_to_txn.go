package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker/txn"
)

// AddPartitionsToTxn: v0-4
//
// v0-3 (clients; v0 is what librdkafka sends) add partitions to the
// producer's transaction, starting it, with a code per partition:
// INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED, CONCURRENT_TRANSACTIONS
// while a previous end is being written, UNKNOWN_TOPIC_OR_PARTITION (the
// others then OPERATION_NOT_ATTEMPTED). v4 (brokers) batches transactions
// and can only verify (KIP-890 part 1). The change is durable in
// __transaction_state before the answer.

func init() { register(24, 0, 4, handleAddPartitionsToTxn) }

func handleAddPartitionsToTxn(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.AddPartitionsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if r.version < 4 {
		var parts []txn.TP
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				parts = append(parts, txn.TP{Topic: t.Topic, Partition: p})
			}
		}
		codes := b.addToTxn(req.TransactionalID, req.ProducerID, req.ProducerEpoch, parts, false)
		resp.Topics = addTxnTopics(parts, codes)
		return done(resp)
	}
	for _, rt := range req.Transactions {
		var parts []txn.TP
		for _, t := range rt.Topics {
			for _, p := range t.Partitions {
				parts = append(parts, txn.TP{Topic: t.Topic, Partition: p})
			}
		}
		codes := b.addToTxn(rt.TransactionalID, rt.ProducerID, rt.ProducerEpoch, parts, rt.VerifyOnly)
		st := kmsg.NewAddPartitionsToTxnResponseTransaction()
		st.TransactionalID = rt.TransactionalID
		for _, t := range addTxnTopics(parts, codes) {
			tt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
			tt.Topic = t.Topic
			for _, p := range t.Partitions {
				tp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
				tp.Partition, tp.ErrorCode = p.Partition, p.ErrorCode
				tt.Partitions = append(tt.Partitions, tp)
			}
			st.Topics = append(st.Topics, tt)
		}
		resp.Transactions = append(resp.Transactions, st)
	}
	return done(resp)
}

// addToTxn checks the transactional id and adds the partitions.
func (b *Broker) addToTxn(id string, pid int64, epoch int16, parts []txn.TP, verifyOnly bool) []int16 {
	if id == "" || !b.txnTopicReady() {
		codes := make([]int16, len(parts))
		for i := range codes {
			codes[i] = kerr.CoordinatorNotAvailable.Code
			if id == "" {
				codes[i] = kerr.InvalidRequest.Code
			}
		}
		return codes
	}
	return b.txns.AddPartitions(id, pid, epoch, parts, verifyOnly)
}

// addTxnTopics groups per-partition codes by topic, in request order.
func addTxnTopics(parts []txn.TP, codes []int16) []kmsg.AddPartitionsToTxnResponseTopic {
	var out []kmsg.AddPartitionsToTxnResponseTopic
	idx := map[string]int{}
	for i, p := range parts {
		j, ok := idx[p.Topic]
		if !ok {
			j = len(out)
			idx[p.Topic] = j
			t := kmsg.NewAddPartitionsToTxnResponseTopic()
			t.Topic = p.Topic
			out = append(out, t)
		}
		rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
		rp.Partition, rp.ErrorCode = p.Partition, codes[i]
		out[j].Partitions = append(out[j].Partitions, rp)
	}
	return out
}
