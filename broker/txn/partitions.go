package txn

import (
	"github.com/twmb/franz-go/pkg/kerr"
)

// A broker coordinates the transactional ids of the __transaction_state
// partitions it leads (DESIGN decision 4): it loads a partition's ids when
// it becomes its leader and drops them when it stops leading it. Only
// loaded ids are in txns, so timeouts and the finishing of prepared
// transactions run only where their partition is led.

// partitions tracks which partitions are served. Guarded by Coordinator.mu.
type partitions struct {
	owned   map[int32]bool
	loading map[int32]bool
	gen     map[int32]uint64 // bumped by every load and unload
}

func newPartitions() partitions {
	return partitions{owned: map[int32]bool{}, loading: map[int32]bool{}, gen: map[int32]uint64{}}
}

// ownCode is the error for a request about id: 0 when this coordinator
// serves it. c.mu is held.
func (c *Coordinator) ownCode(id string) int16 {
	if c.closed {
		return kerr.CoordinatorNotAvailable.Code
	}
	if c.cfg.PartitionOf == nil {
		return 0
	}
	k := c.cfg.PartitionOf(id)
	switch {
	case k < 0:
		return kerr.CoordinatorNotAvailable.Code
	case c.parts.owned[k]:
		return 0
	case c.parts.loading[k]:
		return kerr.CoordinatorLoadInProgress.Code
	}
	return kerr.NotCoordinator.Code
}

// LoadPartition starts serving the ids of partition k: read hands every
// record of the partition, in log order, to apply. Requests for its ids get
// COORDINATOR_LOAD_IN_PROGRESS meanwhile. A load overtaken by an Unload or
// another load of k changes nothing. Once loaded, transactions found
// prepared are finished in the background (after Start).
func (c *Coordinator) LoadPartition(k int32, read func(apply func(key, value []byte) error) error) error {
	gen, ok := c.beginLoad(k)
	if !ok {
		return nil
	}
	return c.load(k, gen, read)
}

// StartLoad is LoadPartition in the background: requests for the ids of k
// get COORDINATOR_LOAD_IN_PROGRESS from its return on. Close waits for it;
// failed reports an error of read.
func (c *Coordinator) StartLoad(k int32, read func(apply func(key, value []byte) error) error, failed func(error)) {
	gen, ok := c.beginLoad(k)
	if !ok {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := c.load(k, gen, read); err != nil {
			failed(err)
		}
	}()
}

func (c *Coordinator) beginLoad(k int32) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, false
	}
	c.parts.gen[k]++
	c.parts.loading[k] = true
	delete(c.parts.owned, k)
	c.dropPartitionLocked(k)
	return c.parts.gen[k], true
}

func (c *Coordinator) load(k int32, gen uint64, read func(apply func(key, value []byte) error) error) error {
	tmp := New(c.cfg)
	err := read(tmp.Load)

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.parts.gen[k] != gen {
		return nil
	}
	delete(c.parts.loading, k)
	if err != nil {
		return err
	}
	for id, t := range tmp.txns {
		c.txns[id] = t
		c.byPID[t.producerID] = t
	}
	c.parts.owned[k] = true
	if c.started {
		for _, t := range tmp.txns {
			if !t.busy && (t.state == PrepareCommit || t.state == PrepareAbort) {
				t.busy = true
				c.endAsync(t, t.state == PrepareCommit, nil)
			}
		}
	}
	return nil
}

// Unload stops serving the ids of partition k: they are forgotten here
// and their requests get NOT_COORDINATOR. Ends already writing markers run
// on; their state writes fail, and the new coordinator finishes them.
func (c *Coordinator) Unload(k int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.parts.gen[k]++
	delete(c.parts.loading, k)
	delete(c.parts.owned, k)
	c.dropPartitionLocked(k)
}

// Serves reports whether partition k is loaded or loading.
func (c *Coordinator) Serves(k int32) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cfg.PartitionOf == nil || c.parts.owned[k] || c.parts.loading[k]
}

func (c *Coordinator) dropPartitionLocked(k int32) {
	if c.cfg.PartitionOf == nil {
		return
	}
	for id, t := range c.txns {
		if c.cfg.PartitionOf(id) == k {
			delete(c.txns, id)
			if c.byPID[t.producerID] == t {
				delete(c.byPID, t.producerID)
			}
		}
	}
}
