package broker

import (
	"fmt"
	"time"

	"github.com/sluice-io/sluice/broker/commitlog"
	"github.com/sluice-io/sluice/broker/txn"
)

// The transaction coordinator (package txn) is bound to
// __transaction_state as the group coordinator is to __consumer_offsets:
// a transactional id lives in partition abs(hash(id)) % partitions, its
// state is appended there and replayed at start. Markers go straight into
// the partitions' logs: on one node the coordinator leads every partition.

const txnTopic = "__transaction_state"

// newTxnCoordinator builds the coordinator and rebuilds it from
// __transaction_state when the topic exists.
func (b *Broker) newTxnCoordinator() error {
	b.txns = txn.New(txn.Config{
		Log:           txnLog{b},
		Markers:       txnMarkers{b},
		NewProducerID: b.pids.nextID,
		Partitions:    b.partitionsOf,
		MaxTimeout:    b.cfg.TxnMaxTimeout,
		IDExpiration:  b.cfg.TxnIDExpiration,
		CheckInterval: b.cfg.TxnAbortCheckInterval,
		Logger:        b.logger,
	})
	return b.loadTopic(txnTopic, func(_ int32, h *commitlog.Header, key, value []byte) error {
		if h.IsControl() {
			return nil
		}
		return b.txns.Load(key, value)
	})
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

// txnLog appends the coordinator's records to the id's partition.
type txnLog struct{ b *Broker }

func (l txnLog) Append(id string, recs []txn.Record) <-chan error {
	kv := make([]kvRecord, len(recs))
	for i, r := range recs {
		kv[i] = kvRecord{r.Key, r.Value}
	}
	return durable(l.b.appendKeyed(&l.b.txnCT, id, kv, -1, -1))
}

// txnMarkers writes transaction markers into the partitions' logs.
type txnMarkers struct{ b *Broker }

// WriteMarkers appends the marker to every partition, waits until all are
// durable, then completes the transaction's offset commits in the
// __consumer_offsets partitions among them.
func (m txnMarkers) WriteMarkers(pid int64, epoch int16, commit bool, parts map[string][]int32) error {
	b := m.b
	now := time.Now().UnixMilli()
	var waits []<-chan error
	var offsetParts []int32
	for topic, ps := range parts {
		for _, idx := range ps {
			p := b.partition(topic, idx)
			if p == nil {
				if b.partitionsOf(topic) < 0 {
					continue // deleted: nothing left to mark
				}
				return fmt.Errorf("%s-%d is not open", topic, idx)
			}
			waits = append(waits, durable(b.appendBatch(p, markerBatch(pid, epoch, commit, 0, now))))
			if topic == offsetsTopic {
				offsetParts = append(offsetParts, idx)
			}
		}
	}
	var err error
	for _, w := range waits {
		if werr := <-w; werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		return err
	}
	if len(offsetParts) > 0 {
		n := b.partitionCount(&b.offsetsCT)
		in := map[int]bool{}
		for _, p := range offsetParts {
			in[int(p)] = true
		}
		b.groups.CompleteTxn(pid, commit, func(g string) bool { return in[groupPartition(g, n)] })
	}
	return nil
}
