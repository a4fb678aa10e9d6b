package txn

import (
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// InitProducerID gives a transactional producer its id and a new epoch,
// which fences every older producer of the same transactional id. A
// transaction still ongoing is aborted first (at a bumped epoch, so the
// old producer's late writes are refused) and the caller is told
// CONCURRENT_TRANSACTIONS to retry. prevPID/prevEpoch are what the client
// holds (KIP-360, -1 when it holds nothing).
func (c *Coordinator) InitProducerID(id string, timeout time.Duration, prevPID int64, prevEpoch int16) (int64, int16, int16) {
	if timeout <= 0 || timeout > c.cfg.MaxTimeout {
		return -1, -1, kerr.InvalidTransactionTimeout.Code
	}
	c.mu.Lock()
	if code := c.ownCode(id); code != 0 {
		c.mu.Unlock()
		return -1, -1, code
	}
	t := c.txns[id]
	if t == nil {
		pid, err := c.cfg.NewProducerID()
		if err != nil {
			c.mu.Unlock()
			c.cfg.Logger.Error("allocate producer id", "transactional_id", id, "err", err)
			return -1, -1, kerr.CoordinatorNotAvailable.Code
		}
		t = &txn{id: id, epoch: -1, state: Empty, partitions: map[string]map[int32]bool{}}
		c.txns[id] = t
		c.setPID(t, pid)
		return c.initDone(t, timeout, -1)
	}
	switch {
	case t.busy || t.state == PrepareCommit || t.state == PrepareAbort:
		c.mu.Unlock()
		return -1, -1, kerr.ConcurrentTransactions.Code
	case prevPID >= 0 && prevPID == t.producerID && t.lastEpoch >= 0 && prevEpoch == t.lastEpoch && t.state != Ongoing:
		// A retry of the KIP-360 bump from prevEpoch whose answer was
		// lost. Only that bump: had a fresh InitProducerId or a fence
		// moved the epoch on, prevEpoch's holder is a zombie.
		pid, epoch := t.producerID, t.epoch
		c.mu.Unlock()
		return pid, epoch, 0
	case prevPID >= 0 && (prevPID != t.producerID || prevEpoch != t.epoch):
		c.mu.Unlock()
		return -1, -1, kerr.ProducerFenced.Code
	case t.state == Ongoing:
		c.cfg.Logger.Info("aborting the open transaction of a re-initialized producer", "transactional_id", id, "producer_id", t.producerID)
		c.endAsync(t, false, c.prepare(t, false, true))
		c.mu.Unlock()
		return -1, -1, kerr.ConcurrentTransactions.Code
	}
	if t.epoch >= math.MaxInt16-1 {
		pid, err := c.cfg.NewProducerID()
		if err != nil {
			c.mu.Unlock()
			return -1, -1, kerr.CoordinatorNotAvailable.Code
		}
		c.setPID(t, pid)
		t.epoch, prevPID = -1, -1
	}
	last := int16(-1)
	if prevPID >= 0 {
		last = t.epoch // a KIP-360 bump of the producer's own epoch
	}
	return c.initDone(t, timeout, last)
}

// initDone bumps t's epoch, writes it down and answers; lastEpoch is the
// epoch a KIP-360 bump replaces, -1 for a fresh init. The caller holds
// c.mu, which initDone releases.
func (c *Coordinator) initDone(t *txn, timeout time.Duration, lastEpoch int16) (int64, int16, int16) {
	t.epoch++
	t.lastEpoch = lastEpoch
	t.timeout, t.state, t.updated, t.started = timeout, Empty, time.Now(), time.Time{}
	t.partitions = map[string]map[int32]bool{}
	pid, epoch := t.producerID, t.epoch
	if err := c.writeState(t); err != nil {
		return -1, -1, kerr.CoordinatorNotAvailable.Code
	}
	return pid, epoch, 0
}
