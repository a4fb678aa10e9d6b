package broker

import (
	"github.com/sluice-io/sluice/broker/commitlog"
	"github.com/sluice-io/sluice/broker/txn"
)

// The transaction coordinator (package txn) is bound to
// __transaction_state as the group coordinators are to __consumer_offsets:
// a transactional id lives in partition abs(hash(id)) % partitions, its
// state is appended there, and the broker leading a partition serves its
// ids, loaded from the partition when it became the leader
// (coordinatorLeadership); other ids get NOT_COORDINATOR. One
// txn.Coordinator holds the ids of every led partition: the produce path
// checks transactional writes against it by producer id alone. Markers are
// written by txn_markers.go.

const txnTopic = "__transaction_state"

// newTxnCoordinator builds the coordinator and loads the
// __transaction_state partitions this broker leads.
func (b *Broker) newTxnCoordinator() error {
	b.txns = txn.New(txn.Config{
		Log:           txnLog{b},
		Markers:       newTxnMarkers(b),
		NewProducerID: b.pids.nextID,
		Partitions:    b.partitionsOf,
		MaxTimeout:    b.cfg.TxnMaxTimeout,
		IDExpiration:  b.cfg.TxnIDExpiration,
		CheckInterval: b.cfg.TxnAbortCheckInterval,
		Logger:        b.logger,
		PartitionOf:   b.txnPartitionOf,
		Clustered:     b.replicated(),
	})
	for _, p := range b.ledInternal(txnTopic) {
		if err := b.txns.LoadPartition(p.index, b.txnRecords(p)); err != nil {
			return err
		}
	}
	return nil
}

// txnPartitionOf is the __transaction_state partition of a transactional
// id, -1 while the topic does not exist.
func (b *Broker) txnPartitionOf(id string) int32 {
	n := b.partitionCount(&b.txnCT)
	if n == 0 {
		return -1
	}
	return int32(groupPartition(id, n))
}

// txnLeadership loads or unloads the transactional ids of p.
func (b *Broker) txnLeadership(p *partition, leads bool) {
	switch {
	case !leads:
		b.txns.Unload(p.index)
	case b.txns.Serves(p.index):
		// A new leader epoch of a partition led here: nothing to reload.
	case p.log.EndOffset() == 0:
		if err := b.txns.LoadPartition(p.index, b.txnRecords(p)); err != nil {
			b.logger.Error("load transactions", "partition", p.index, "err", err)
		}
	default:
		b.txns.StartLoad(p.index, b.txnRecords(p), func(err error) {
			b.logger.Error("load transactions", "partition", p.index, "err", err)
		})
	}
}

// txnRecords reads p's transaction state records for LoadPartition.
func (b *Broker) txnRecords(p *partition) func(apply func(key, value []byte) error) error {
	return func(apply func(key, value []byte) error) error {
		return b.loadPartition(p, func(h *commitlog.Header, key, value []byte) error {
			if h.IsControl() {
				return nil
			}
			return apply(key, value)
		})
	}
}

// openPartitions is a topic's open partition count, -1 when it is not
// open.
func (b *Broker) partitionsOf(topic string) int32 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if t := b.topics[topic]; t != nil {
		return int32(len(t.parts))
	}
	return -1
}

// txnTopicReady creates __transaction_state on first need and reports
// whether it is open.
func (b *Broker) txnTopicReady() bool { return b.topicReady(&b.txnCT) }

// txnLog appends the coordinator's records to the id's partition, which
// this broker must lead; they are fsynced (and replicated) before the
// coordinator goes on.
type txnLog struct{ b *Broker }

func (l txnLog) Append(id string, recs []txn.Record) <-chan error {
	kv := make([]kvRecord, len(recs))
	for i, r := range recs {
		kv[i] = kvRecord{r.Key, r.Value}
	}
	return l.b.appendKeyed(&l.b.txnCT, id, kv, -1, -1)
}
