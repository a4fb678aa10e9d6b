package txn

import (
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// EndTxn commits or aborts the ongoing transaction of (pid, epoch) and
// returns once its markers are written and it is complete. A retry of an
// end that already completed the same way succeeds.
func (c *Coordinator) EndTxn(id string, pid int64, epoch int16, commit bool) int16 {
	c.mu.Lock()
	t, code := c.owned(id, pid, epoch)
	if code != 0 {
		c.mu.Unlock()
		return code
	}
	want := CompleteAbort
	if commit {
		want = CompleteCommit
	}
	switch {
	case t.busy || t.state == PrepareCommit || t.state == PrepareAbort:
		c.mu.Unlock()
		return kerr.ConcurrentTransactions.Code
	case t.state == CompleteCommit || t.state == CompleteAbort || t.state == Empty:
		c.mu.Unlock()
		if t.lastOutcome == want && t.state != Empty {
			return 0 // a retry of what happened
		}
		return kerr.InvalidTxnState.Code
	case t.state != Ongoing:
		c.mu.Unlock()
		return kerr.InvalidTxnState.Code
	}
	wait := c.prepare(t, commit, false)
	c.mu.Unlock()
	return c.end(t, commit, wait)
}

// owned finds the transaction of id and checks the producer id and epoch
// against it.
func (c *Coordinator) owned(id string, pid int64, epoch int16) (*txn, int16) {
	if code := c.ownCode(id); code != 0 {
		return nil, code
	}
	t := c.txns[id]
	switch {
	case t == nil || t.producerID != pid:
		return nil, kerr.InvalidProducerIDMapping.Code
	case epoch != t.epoch:
		return nil, kerr.ProducerFenced.Code
	}
	return t, 0
}

// prepare moves t to PrepareCommit or PrepareAbort (bumping the epoch
// first when fence is set, which fences the producer's later writes) and
// writes that down; the caller holds c.mu and then calls end.
func (c *Coordinator) prepare(t *txn, commit, fence bool) <-chan error {
	if fence && t.epoch < math.MaxInt16-1 {
		t.epoch++
		t.lastEpoch = -1 // no producer may claim the fencing epoch as its retry
	}
	t.state = PrepareAbort
	if commit {
		t.state = PrepareCommit
	}
	t.busy, t.updated = true, time.Now()
	return c.cfg.Log.Append(t.id, []Record{t.record()})
}

// end waits for the prepare record, writes the markers and completes the
// transaction. It runs without c.mu; t.busy keeps other requests out.
func (c *Coordinator) end(t *txn, commit bool, prepared <-chan error) int16 {
	if err := <-prepared; err != nil {
		c.cfg.Logger.Error("write transaction state", "transactional_id", t.id, "err", err)
		c.mu.Lock()
		t.busy = false // stays prepared: the background check retries
		c.mu.Unlock()
		return kerr.CoordinatorNotAvailable.Code
	}
	return c.complete(t, commit)
}

// complete writes the markers of a prepared transaction and moves it to
// CompleteCommit or CompleteAbort.
func (c *Coordinator) complete(t *txn, commit bool) int16 {
	c.mu.Lock()
	pid, epoch, parts := t.producerID, t.epoch, t.partitionMap()
	c.mu.Unlock()
	if err := c.cfg.Markers.WriteMarkers(pid, epoch, commit, parts); err != nil {
		c.cfg.Logger.Error("write transaction markers", "transactional_id", t.id, "producer_id", pid, "err", err)
		c.mu.Lock()
		t.busy = false
		c.mu.Unlock()
		return kerr.CoordinatorNotAvailable.Code
	}
	c.mu.Lock()
	t.state, t.lastOutcome = CompleteAbort, CompleteAbort
	if commit {
		t.state, t.lastOutcome = CompleteCommit, CompleteCommit
	}
	t.partitions, t.updated, t.started = map[string]map[int32]bool{}, time.Now(), time.Time{}
	// If this write fails the markers are still written and the outcome
	// stands: a restart finds the transaction prepared and writes them
	// again, harmlessly.
	c.writeState(t)
	return 0
}

// writeState writes t's state and waits until it is durable, keeping other
// requests of t out (busy) meanwhile. The caller holds c.mu, which
// writeState releases.
func (c *Coordinator) writeState(t *txn) error {
	t.busy = true
	wait := c.cfg.Log.Append(t.id, []Record{t.record()})
	c.mu.Unlock()
	err := <-wait
	c.mu.Lock()
	t.busy = false
	c.mu.Unlock()
	if err != nil {
		c.cfg.Logger.Error("write transaction state", "transactional_id", t.id, "err", err)
	}
	return err
}

// check aborts transactions past their timeout (fencing their producer),
// finishes prepared ones whose end failed or was cut by a restart, and
// forgets transactional ids idle for longer than their expiration.
func (c *Coordinator) check(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	for id, t := range c.txns {
		if t.busy {
			continue
		}
		switch t.state {
		case Ongoing:
			if now.Sub(t.started) < t.timeout {
				continue
			}
			c.cfg.Logger.Info("aborting a timed-out transaction", "transactional_id", id, "producer_id", t.producerID, "timeout", t.timeout)
			c.endAsync(t, false, c.prepare(t, false, true))
		case PrepareCommit, PrepareAbort:
			t.busy = true
			commit := t.state == PrepareCommit
			c.endAsync(t, commit, nil)
		case Empty, CompleteCommit, CompleteAbort:
			if now.Sub(t.updated) >= c.cfg.IDExpiration {
				c.cfg.Logger.Info("forgetting an idle transactional id", "transactional_id", id)
				delete(c.txns, id)
				if c.byPID[t.producerID] == t {
					delete(c.byPID, t.producerID)
				}
				k := t.record().Key
				c.cfg.Log.Append(id, []Record{{Key: k}})
			}
		}
	}
}

// endAsync finishes an end in the background; prepared nil means the
// prepare record is already in the log. The caller holds c.mu.
func (c *Coordinator) endAsync(t *txn, commit bool, prepared <-chan error) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if prepared != nil {
			c.end(t, commit, prepared)
		} else {
			c.complete(t, commit)
		}
	}()
}
