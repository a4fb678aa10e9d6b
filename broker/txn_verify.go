package broker

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// KIP-890 part 1 across brokers. A transactional batch whose producer is
// coordinated by this broker is checked against the coordinator's state
// under its lock (txn.Coordinator.AppendVerified). One coordinated elsewhere
// is verified with its coordinator (AddPartitionsToTxn v4, verify only) the
// first time it writes to the partition in a transaction; the partition
// then remembers the producer's epoch as verified until the transaction's
// marker lands here. A write that was verified before a marker and arrives
// after it (a delayed retry of an ended transaction) finds the marker's
// generation moved on and is refused with INVALID_TXN_STATE, so it can
// neither start a hanging transaction nor slip into the next one. Kafka
// keeps the same guard in the producer state of the partition.

// txnVerifyTimeout bounds one verification round trip.
const txnVerifyTimeout = 5 * time.Second

// txnVerified is a partition's memory of verified transactional writers.
type txnVerified struct {
	mu  sync.Mutex
	by  map[int64]int16  // producer id → epoch verified for its ongoing transaction
	gen map[int64]uint64 // producer id → markers written here
}

// txnGuard is what a verified write checks again under the lock.
type txnGuard struct {
	remote bool
	pid    int64
	epoch  int16
	gen    uint64
}

// valid reports, with mu held, whether no marker of the producer landed
// since the verification.
func (v *txnVerified) valid(g txnGuard) bool {
	return v.gen[g.pid] == g.gen && v.by[g.pid] == g.epoch
}

// markerWritten forgets the producer's verification; mu is held.
func (v *txnVerified) markerWritten(pid int64) {
	if v.gen == nil {
		v.gen = map[int64]uint64{}
	}
	v.gen[pid]++
	delete(v.by, pid)
}

// remoteTxn reports whether a transactional write of pid must be verified
// with another broker's coordinator.
func (b *Broker) remoteTxn(pid int64, txnID *string) bool {
	return b.replicated() && txnID != nil && *txnID != "" && !b.txns.Transactional(pid)
}

// verifyTxnWrite verifies (pid, epoch)'s write to p with the coordinator
// of txnID, once per transaction, and returns the guard the append checks.
func (b *Broker) verifyTxnWrite(p *partition, txnID string, pid int64, epoch int16) (txnGuard, int16) {
	v := &p.verified
	v.mu.Lock()
	g := txnGuard{remote: true, pid: pid, epoch: epoch, gen: v.gen[pid]}
	if e, ok := v.by[pid]; ok && e == epoch {
		v.mu.Unlock()
		return g, 0
	}
	v.mu.Unlock()
	if code := b.askTxnCoordinator(txnID, pid, epoch, p.t.name, p.index); code != 0 {
		return g, code
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.gen[pid] != g.gen {
		return g, kerr.InvalidTxnState.Code // its transaction ended meanwhile
	}
	if v.by == nil {
		v.by = map[int64]int16{}
	}
	v.by[pid] = epoch
	return g, 0
}

// askTxnCoordinator sends the verify-only AddPartitionsToTxn. Failures to
// reach the coordinator answer NOT_ENOUGH_REPLICAS, which producers retry
// (Kafka's mapping for KIP-890 verification).
func (b *Broker) askTxnCoordinator(txnID string, pid int64, epoch int16, topic string, idx int32) int16 {
	k := b.txnPartitionOf(txnID)
	if k < 0 {
		return kerr.NotEnoughReplicas.Code
	}
	leader, ok := b.markerLeader(markerTP{topic: txnTopic, idx: k})
	if !ok || leader < 0 {
		return kerr.NotEnoughReplicas.Code
	}
	addr := b.brokerAddr(leader)
	if addr == "" {
		return kerr.NotEnoughReplicas.Code
	}
	cl, err := b.peers.get(addr)
	if err != nil {
		return kerr.NotEnoughReplicas.Code
	}
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
	tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, tx.VerifyOnly = txnID, pid, epoch, true
	tt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
	tt.Topic, tt.Partitions = topic, []int32{idx}
	tx.Topics = append(tx.Topics, tt)
	req.Transactions = append(req.Transactions, tx)
	ctx, cancel := context.WithTimeout(context.Background(), txnVerifyTimeout)
	defer cancel()
	kresp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		b.logger.Debug("transaction verification", "transactional_id", txnID, "coordinator", leader, "err", err)
		return kerr.NotEnoughReplicas.Code
	}
	resp := kresp.(*kmsg.AddPartitionsToTxnResponse)
	code := resp.ErrorCode
	for _, t := range resp.Transactions {
		for _, rt := range t.Topics {
			for _, rp := range rt.Partitions {
				if code == 0 {
					code = rp.ErrorCode
				}
			}
		}
	}
	switch code {
	case kerr.NotCoordinator.Code, kerr.CoordinatorNotAvailable.Code, kerr.CoordinatorLoadInProgress.Code,
		kerr.ConcurrentTransactions.Code, kerr.UnsupportedVersion.Code:
		return kerr.NotEnoughReplicas.Code
	}
	return code
}
