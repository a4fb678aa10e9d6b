package broker

import (
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker/commitlog"
	"github.com/sluice-io/sluice/broker/group"
)

// Group coordinators follow the leadership of __consumer_offsets
// partitions (DESIGN decision 4, Kafka's behaviour): this broker runs one
// group.Coordinator per partition it leads, built and loaded from that
// partition's log when it becomes the leader and unloaded when it stops
// leading it. A request is routed to the coordinator of its group's
// partition; a group whose partition is led elsewhere gets NOT_COORDINATOR
// (the client asks FindCoordinator again), one still loading gets
// COORDINATOR_LOAD_IN_PROGRESS. Each coordinator has its own lock, so
// groups of different partitions never wait for each other.

// groupCoordinators is the set of this broker's group coordinators.
type groupCoordinators struct {
	b      *Broker
	mu     sync.RWMutex
	shards map[int32]*groupShard // by __consumer_offsets partition
	closed bool
	loads  sync.WaitGroup // loads in the background

	// Stand-ins answering every request with one error.
	notCoordinator, loading, unavailable, invalidGroup *group.Coordinator
}

// groupShard is the coordinator of one led __consumer_offsets partition.
type groupShard struct {
	p      *partition
	epoch  atomic.Int32 // the leader epoch its writes need
	c      *group.Coordinator
	loaded atomic.Bool
	// loadMu is held while the partition loads; transaction markers are
	// appended and applied under it, so the load sees each marker either
	// in the log or as a completion afterwards.
	loadMu sync.Mutex
}

func newGroupCoordinators(b *Broker) *groupCoordinators {
	return &groupCoordinators{
		b:              b,
		shards:         map[int32]*groupShard{},
		notCoordinator: group.Refusing(kerr.NotCoordinator),
		loading:        group.Refusing(kerr.CoordinatorLoadInProgress),
		unavailable:    group.Refusing(kerr.CoordinatorNotAvailable),
		invalidGroup:   group.Refusing(kerr.InvalidGroupID),
	}
}

// of is the coordinator answering for groupID: the real one when this
// broker leads the group's partition and has loaded it, else a stand-in
// answering the error the client must hear.
func (g *groupCoordinators) of(groupID string) *group.Coordinator {
	if groupID == "" {
		return g.invalidGroup
	}
	n := g.b.partitionCount(&g.b.offsetsCT)
	if n == 0 {
		return g.unavailable
	}
	g.mu.RLock()
	s := g.shards[int32(groupPartition(groupID, n))]
	g.mu.RUnlock()
	switch {
	case s == nil:
		return g.notCoordinator
	case !s.loaded.Load():
		return g.loading
	}
	return s.c
}

// shard is the coordinator of partition k, nil when k is not led here.
func (g *groupCoordinators) shard(k int32) *groupShard {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.shards[k]
}

// all lists the loaded coordinators.
func (g *groupCoordinators) all() []*group.Coordinator {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]*group.Coordinator, 0, len(g.shards))
	for _, s := range g.shards {
		if s.loaded.Load() {
			out = append(out, s.c)
		}
	}
	return out
}

// leadership binds the coordinator of p to its leadership: a new leader
// builds and loads one (inline when the log is empty, else in the
// background), a former leader unloads it. A new leader epoch of a
// partition still led here keeps the coordinator, as Kafka does.
func (g *groupCoordinators) leadership(p *partition, leads bool, epoch int32) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	old := g.shards[p.index]
	if leads && old != nil && old.p == p {
		old.epoch.Store(epoch)
		g.mu.Unlock()
		return
	}
	delete(g.shards, p.index)
	var s *groupShard
	if leads {
		s = &groupShard{p: p}
		s.epoch.Store(epoch)
		s.c = group.New(g.b.groupConfig(s))
		s.loadMu.Lock() // before anyone can find it
		g.shards[p.index] = s
		if p.log.EndOffset() > 0 {
			g.loads.Add(1)
		}
	}
	g.mu.Unlock()
	if old != nil {
		g.b.logger.Info("group coordinator unloaded", "partition", p.index)
		old.c.Unload()
	}
	if s == nil {
		return
	}
	if p.log.EndOffset() == 0 {
		g.load(s)
		return
	}
	go func() {
		defer g.loads.Done()
		g.load(s)
	}()
}

// load rebuilds s from its partition's log and marks it loaded; loadMu is
// held, and released.
func (g *groupCoordinators) load(s *groupShard) {
	defer s.loadMu.Unlock()
	b, p := g.b, s.p
	n := b.partitionCount(&b.offsetsCT)
	inPartition := func(id string) bool { return groupPartition(id, n) == int(p.index) }
	err := b.loadPartition(p, func(h *commitlog.Header, key, value []byte) error {
		switch {
		case h.IsControl():
			if commit, ok := markerCommits(key); ok {
				s.c.LoadMarker(h.ProducerID, commit, inPartition)
			}
			return nil
		case h.IsTransactional():
			return s.c.LoadTxn(h.ProducerID, key, value)
		}
		return s.c.Load(key, value)
	})
	if err != nil {
		// Its groups stay COORDINATOR_LOAD_IN_PROGRESS (retriable) rather
		// than served from a partial state.
		b.logger.Error("load consumer groups", "partition", p.index, "err", err)
		return
	}
	s.c.Loaded() // also starts offset expiry
	s.loaded.Store(true)
	b.logger.Debug("group coordinator loaded", "partition", p.index, "epoch", s.epoch.Load())
}

// Close unloads every coordinator and waits for loads in progress.
func (g *groupCoordinators) Close() {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.closed = true
	shards := g.shards
	g.shards = map[int32]*groupShard{}
	g.mu.Unlock()
	for _, s := range shards {
		s.c.Close()
	}
	g.loads.Wait()
}

// completeTxn applies a transaction marker just written to partition k to
// the transactional offset commits of its groups.
func (g *groupCoordinators) completeTxn(k int32, pid int64, commit bool) {
	s := g.shard(k)
	if s == nil {
		return
	}
	n := g.b.partitionCount(&g.b.offsetsCT)
	s.c.CompleteTxn(pid, commit, func(id string) bool { return groupPartition(id, n) == int(k) })
}

// ListGroups lists the groups of every loaded coordinator.
func (g *groupCoordinators) ListGroups(states, types []string) []kmsg.ListGroupsResponseGroup {
	var out []kmsg.ListGroupsResponseGroup
	for _, c := range g.all() {
		out = append(out, c.ListGroups(states, types)...)
	}
	return out
}

// DeleteGroups deletes groups, each through its coordinator.
func (g *groupCoordinators) DeleteGroups(ids []string) ([]int16, func()) {
	codes := make([]int16, len(ids))
	var order []*group.Coordinator
	batches := map[*group.Coordinator][]int{}
	for i, id := range ids {
		c := g.of(id)
		if batches[c] == nil {
			order = append(order, c)
		}
		batches[c] = append(batches[c], i)
	}
	var finishes []func()
	for _, c := range order {
		idx := batches[c]
		sub := make([]string, len(idx))
		for j, i := range idx {
			sub[j] = ids[i]
		}
		got, finish := c.DeleteGroups(sub)
		finishes = append(finishes, func() {
			finish()
			for j, i := range idx {
				codes[i] = got[j]
			}
		})
	}
	return codes, func() {
		for _, f := range finishes {
			f()
		}
	}
}

// ForgetTopics drops the offsets of deleted topics in every coordinator.
func (g *groupCoordinators) ForgetTopics(topics []string) {
	for _, c := range g.all() {
		c.ForgetTopics(topics)
	}
}

// Snapshot sums the groups' states and lists their offsets, over every
// loaded coordinator.
func (g *groupCoordinators) Snapshot() (map[string]int, []group.Committed) {
	states := map[string]int{}
	var offsets []group.Committed
	for _, c := range g.all() {
		s, o := c.Snapshot()
		for k, n := range s {
			states[k] += n
		}
		offsets = append(offsets, o...)
	}
	return states, offsets
}
