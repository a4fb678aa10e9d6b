package txn

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TP is one partition of a transaction.
type TP struct {
	Topic     string
	Partition int32
}

// AddPartitions adds partitions to the producer's transaction, starting
// one when none is ongoing, and returns a code per partition once the
// change is durable. verifyOnly (AddPartitionsToTxn v4 from a broker)
// only answers whether each partition is already in the transaction.
func (c *Coordinator) AddPartitions(id string, pid int64, epoch int16, parts []TP, verifyOnly bool) []int16 {
	codes := make([]int16, len(parts))
	all := func(code int16) []int16 {
		for i := range codes {
			codes[i] = code
		}
		return codes
	}
	c.mu.Lock()
	t, code := c.owned(id, pid, epoch)
	switch {
	case code != 0:
		c.mu.Unlock()
		return all(code)
	case verifyOnly:
		for i, p := range parts {
			if t.state != Ongoing || !t.has(p.Topic, p.Partition) {
				codes[i] = kerr.InvalidTxnState.Code
			}
		}
		c.mu.Unlock()
		return codes
	case t.busy || t.state == PrepareCommit || t.state == PrepareAbort:
		c.mu.Unlock()
		return all(kerr.ConcurrentTransactions.Code)
	}
	bad := false
	for i, p := range parts {
		if p.Partition < 0 || p.Partition >= c.cfg.Partitions(p.Topic) {
			codes[i], bad = kerr.UnknownTopicOrPartition.Code, true
		}
	}
	if bad {
		for i := range codes {
			if codes[i] == 0 {
				codes[i] = kerr.OperationNotAttempted.Code
			}
		}
		c.mu.Unlock()
		return codes
	}
	var added []TP
	for _, p := range parts {
		if t.add(p.Topic, p.Partition) {
			added = append(added, p)
		}
	}
	if len(added) == 0 && t.state == Ongoing {
		c.mu.Unlock()
		return codes
	}
	now := time.Now()
	prevState, prevStarted := t.state, t.started
	if t.state != Ongoing {
		t.state, t.started = Ongoing, now
	}
	t.updated = now
	// Not busy while written: produces to partitions already added go on.
	wait := c.cfg.Log.Append(t.id, []Record{t.record()})
	c.mu.Unlock()
	if err := <-wait; err != nil {
		c.cfg.Logger.Error("write transaction state", "transactional_id", id, "err", err)
		// Undo what the log does not hold: a retry must write it again,
		// or a crash would leave a partition of the transaction unmarked.
		c.mu.Lock()
		for _, p := range added {
			delete(t.partitions[p.Topic], p.Partition)
			if len(t.partitions[p.Topic]) == 0 {
				delete(t.partitions, p.Topic)
			}
		}
		if prevState != Ongoing {
			t.state, t.started = prevState, prevStarted
		}
		c.mu.Unlock()
		return all(kerr.CoordinatorNotAvailable.Code)
	}
	return codes
}

// Verify reports whether a transactional write of (pid, epoch) to the
// partition may be appended: the producer's current transaction must be
// ongoing and hold the partition (KIP-890 part 1). A write of an older
// epoch is fenced; one outside any transaction, or into a partition not
// added, is INVALID_TXN_STATE, so a delayed write of an ended transaction
// cannot land in the next one.
func (c *Coordinator) Verify(pid int64, epoch int16, topic string, partition int32) int16 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.verify(pid, epoch, topic, partition)
}

// AppendVerified runs write, which appends a transactional batch of (pid,
// epoch) to the partition, if Verify passes, holding the coordinator's read
// lock throughout: the transaction cannot start ending (which takes the
// write lock) between the check and the append, so the batch is always
// before its marker and never left dangling after it (which would hold the
// partition's LSO back forever). Appends of many producers go on at once.
// write returns the produce error code, and must not block on I/O waits.
func (c *Coordinator) AppendVerified(pid int64, epoch int16, topic string, partition int32, write func() int16) int16 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if code := c.verify(pid, epoch, topic, partition); code != 0 {
		return code
	}
	return write()
}

func (c *Coordinator) verify(pid int64, epoch int16, topic string, partition int32) int16 {
	t := c.byPID[pid]
	switch {
	case c.closed:
		return kerr.NotLeaderForPartition.Code // retriable: the broker is going away
	case t == nil && c.cfg.Clustered:
		// Coordinated elsewhere: its coordinator is not asked (as in
		// Kafka before KIP-890's verification); the log's producer state
		// still fences older epochs.
		return 0
	case t == nil:
		return kerr.InvalidProducerIDMapping.Code
	case epoch < t.epoch:
		return kerr.InvalidProducerEpoch.Code
	case epoch > t.epoch || t.state != Ongoing || t.busy || !t.has(topic, partition):
		return kerr.InvalidTxnState.Code
	}
	return 0
}

// Transactional reports whether producer id pid belongs to a
// transactional id: an idempotent producer's KIP-360 re-init must not take
// it over.
func (c *Coordinator) Transactional(pid int64) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.byPID[pid] != nil
}
