package commitlog

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Idempotent producers. For every producer id that wrote to the partition the
// log keeps the producer's epoch and the sequence ranges and offsets of its
// last five batches (Kafka's ProducerStateManager, NumBatchesToRetain). Append
// checks a producer's batch against that state under the log's lock, so the
// check and the write are one step even with concurrent produce requests:
//
//   - same epoch, same first and last sequence as one of the last five
//     batches: a retry of a batch already stored. Nothing is written and
//     Append answers ErrDuplicateBatch with the original base offset.
//   - an epoch below the producer's: ErrInvalidProducerEpoch.
//   - a higher epoch must start at sequence 0, else ErrOutOfOrderSequence.
//   - the same epoch must continue at last sequence + 1 (wrapping from
//     MaxInt32 to 0), else ErrOutOfOrderSequence.
//   - a producer the log knows nothing of is accepted at any sequence: since
//     Kafka 2.5 (KIP-360) a broker no longer answers UNKNOWN_PRODUCER_ID, as
//     its state may have gone with retention or expiry while the producer
//     lives on, and the client resets its sequences only on an epoch bump.
//
// Entries outlive the batches that made them (retention and DeleteRecords do
// not touch them) until ExpireProducers drops those silent for
// producer.id.expiration.ms, as Kafka does. Silence is measured on the
// broker's clock from the producer's last append (or from the start-up that
// replayed it from the log), where Kafka uses the batch's own max timestamp:
// a producer writing records with old CreateTime timestamps (a mirror, a
// backfill) would otherwise lose its state, and its duplicate detection, at
// the next expiry check.

// producerBatchesKept is how many recent batches per producer are remembered
// for duplicate detection; clients keep at most five requests in flight.
const producerBatchesKept = 5

// Errors of the sequence checks. The broker maps them to Kafka's codes.
var (
	// ErrDuplicateBatch is a retried batch already in the log; Append
	// returns it with the original batch's base offset and writes nothing.
	ErrDuplicateBatch       = errors.New("duplicate producer batch")
	ErrOutOfOrderSequence   = errors.New("out of order sequence number")
	ErrInvalidProducerEpoch = errors.New("producer epoch below the current one")
)

// producerBatch is what is remembered of one producer batch.
type producerBatch struct {
	firstSeq, lastSeq int32
	firstOffset       int64
	lastOffset        int64
}

// producerEntry is the state of one producer id in one partition.
type producerEntry struct {
	epoch      int16
	lastSeenMs int64           // broker time of its last append, for expiry
	batches    []producerBatch // oldest first, at most producerBatchesKept
	txnFirst   int64           // first offset of its open transaction, -1 when none (txn.go)
}

// lastSequence is the sequence of a batch's last record: sequences wrap from
// MaxInt32 to 0, as Kafka's DefaultRecordBatch.incrementSequence does.
func lastSequence(h *Header) int32 {
	base, delta := h.BaseSequence, h.LastOffsetDelta
	if base > math.MaxInt32-delta {
		return delta - (math.MaxInt32 - base) - 1
	}
	return base + delta
}

// inSequence reports whether next directly follows last.
func inSequence(last, next int32) bool {
	return int64(next) == int64(last)+1 || (next == 0 && last == math.MaxInt32)
}

// check applies the sequence rules to a data batch of producer e (nil when
// the log has no state for it). For a duplicate it returns the stored batch.
func (e *producerEntry) check(h *Header) (*producerBatch, error) {
	if e == nil {
		return nil, nil
	}
	if h.ProducerEpoch < e.epoch {
		return nil, fmt.Errorf("%w: producer %d epoch %d, current %d", ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, e.epoch)
	}
	if h.ProducerEpoch != e.epoch {
		if h.BaseSequence != 0 {
			return nil, fmt.Errorf("%w: producer %d starts epoch %d at sequence %d, not 0", ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		return nil, nil
	}
	last := lastSequence(h)
	for i := range e.batches {
		if b := &e.batches[i]; b.firstSeq == h.BaseSequence && b.lastSeq == last {
			return b, nil
		}
	}
	if len(e.batches) == 0 {
		return nil, nil // epoch set by a marker: any sequence may follow
	}
	if prev := e.batches[len(e.batches)-1].lastSeq; !inSequence(prev, h.BaseSequence) {
		return nil, fmt.Errorf("%w: producer %d epoch %d sent sequence %d after %d", ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence, prev)
	}
	return nil, nil
}

// checkProducer checks a producer's batch against its state; transaction
// markers are written by the coordinator and not checked. Callers hold l.mu.
func (l *Log) checkProducer(h *Header) (*producerBatch, error) {
	if h.IsControl() || h.BaseSequence < 0 {
		return nil, nil // a marker, or the broker's own transactional write
	}
	return l.producers[h.ProducerID].check(h)
}

// producerStates maps producer id to state; the Log's mutex guards it.
type producerStates map[int64]*producerEntry

// observe records a stored batch (appended at nowMs, or replayed from the
// log) in the state of its producer, without checks.
func (ps producerStates) observe(h *Header, nowMs int64) {
	if h.ProducerID < 0 {
		return
	}
	e := ps[h.ProducerID]
	if e == nil {
		e = &producerEntry{epoch: h.ProducerEpoch, txnFirst: -1}
		ps[h.ProducerID] = e
	}
	if h.ProducerEpoch != e.epoch {
		e.epoch, e.batches = h.ProducerEpoch, nil
	}
	e.lastSeenMs = nowMs
	if h.IsControl() || h.BaseSequence < 0 {
		return // a transaction marker, or a broker's own write: no sequence
	}
	if len(e.batches) == producerBatchesKept {
		copy(e.batches, e.batches[1:])
		e.batches = e.batches[:producerBatchesKept-1]
	}
	e.batches = append(e.batches, producerBatch{
		firstSeq: h.BaseSequence, lastSeq: lastSequence(h),
		firstOffset: h.BaseOffset, lastOffset: h.LastOffset(),
	})
}

// ProducerState is what the log knows of one producer (for tests and, later,
// DescribeProducers).
type ProducerState struct {
	ProducerID   int64
	Epoch        int16
	LastSequence int32 // -1 when no batch is remembered
	LastOffset   int64 // -1 likewise
	LastSeenMs   int64 // broker time of its last append
	TxnFirst     int64 // first offset of its open transaction, -1 when none
}

// Producer returns the state of producer id pid.
func (l *Log) Producer(pid int64) (ProducerState, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	e := l.producers[pid]
	if e == nil {
		return ProducerState{}, false
	}
	return e.state(pid), true
}

// Producers lists the state of every producer the log tracks, by id
// (DescribeProducers).
func (l *Log) Producers() []ProducerState {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]ProducerState, 0, len(l.producers))
	for pid, e := range l.producers {
		out = append(out, e.state(pid))
	}
	slices.SortFunc(out, func(a, b ProducerState) int { return cmp.Compare(a.ProducerID, b.ProducerID) })
	return out
}

func (e *producerEntry) state(pid int64) ProducerState {
	st := ProducerState{ProducerID: pid, Epoch: e.epoch, LastSequence: -1, LastOffset: -1, LastSeenMs: e.lastSeenMs, TxnFirst: e.txnFirst}
	if n := len(e.batches); n > 0 {
		st.LastSequence, st.LastOffset = e.batches[n-1].lastSeq, e.batches[n-1].lastOffset
	}
	return st
}

// ExpireProducers forgets producers that appended nothing for expirationMs
// up to nowMs (producer.id.expiration.ms). It returns how many went.
func (l *Log) ExpireProducers(nowMs, expirationMs int64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for pid, e := range l.producers {
		if nowMs-e.lastSeenMs >= expirationMs && e.txnFirst < 0 {
			delete(l.producers, pid)
			n++
		}
	}
	return n
}
