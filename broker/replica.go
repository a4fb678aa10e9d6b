package broker

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/broker/meta"
)

// Replication, the leader's side. Every open partition has a role from the
// metadata: leader or follower at a leader epoch, with the replica list and
// the ISR. The leader keeps each follower's log end offset from its fetches
// (a follower asks for offset N only once everything below N is fsynced on
// it), advances the high watermark to the lowest log end offset of the ISR,
// and answers acks=all produces once the high watermark covers them.
// Followers fetch (replica_fetcher.go); ISR changes go through the
// controller (isr.go).

// role is a partition's replica role, replaced whole on every change.
type role struct {
	self     int32
	leader   int32 // -1: offline
	epoch    int32 // leader epoch
	pepoch   int32 // partition epoch, for ISR changes
	replicas []int32
	isr      []int32
}

func (r *role) leads() bool { return r != nil && r.leader == r.self }

// alone reports an ISR of the leader only: the high watermark is the log
// end offset and acks=all waits for nothing but the local fsync.
func (r *role) alone() bool { return len(r.isr) == 1 && r.isr[0] == r.self }

// followerState is what the leader knows of one follower.
type followerState struct {
	leo             int64 // -1 until it fetched in this leader epoch
	lastFetch       time.Time
	lastFetchLeader int64 // the leader's log end offset at that fetch
	lastCaughtUp    time.Time
}

// replicaState is the partition's replication state beside its log.
type replicaState struct {
	role atomic.Pointer[role]
	hw   atomic.Int64 // high watermark unless the leader is alone

	// roleMu orders appends with role changes: appends (produce on the
	// leader, the fetcher on a follower) hold it shared and check the role
	// under it; a role change holds it exclusively.
	roleMu sync.RWMutex

	repMu      sync.Mutex
	followers  map[int32]*followerState // on the leader
	epochStart int64                    // log end offset when this leadership began
	hwCh       chan struct{}            // closed when the high watermark or role changes
	isrBusy    atomic.Bool              // an ISR change is in flight

	verified txnVerified // transactional writers verified with a remote coordinator (txn_verify.go)
}

// highWatermark is the offset below which records are visible to
// consumers: the log end offset while the leader is alone in the ISR.
func (p *partition) highWatermark() int64 {
	if r := p.role.Load(); r == nil || (r.leads() && r.alone()) {
		return p.log.EndOffset()
	}
	return p.hw.Load()
}

// changed returns a channel closed at the next change of the high
// watermark or the role.
func (p *partition) changed() <-chan struct{} {
	p.repMu.Lock()
	defer p.repMu.Unlock()
	if p.hwCh == nil {
		p.hwCh = make(chan struct{})
	}
	return p.hwCh
}

// broadcastLocked wakes the waiters of changed; repMu is held.
func (p *partition) broadcastLocked() {
	if p.hwCh != nil {
		close(p.hwCh)
		p.hwCh = nil
	}
}

// roleFor is the role of partition mp on this broker. A standalone broker
// leads everything it has whatever the metadata says, as before
// clustering.
func (b *Broker) roleFor(mp meta.Partition) *role {
	self := b.cfg.NodeID
	if !b.replicated() {
		return &role{self: self, leader: self, epoch: mp.LeaderEpoch, pepoch: mp.PartitionEpoch, replicas: []int32{self}, isr: []int32{self}}
	}
	leader := mp.Leader
	if !b.metaCaughtUp() {
		leader = -1 // neither lead nor follow on a stale view of the metadata
	}
	return &role{self: self, leader: leader, epoch: mp.LeaderEpoch, pepoch: mp.PartitionEpoch, replicas: mp.Replicas, isr: mp.ISR}
}

// metaCaughtUp reports (and remembers) that this node's metadata has
// caught up with the quorum since it started (meta.Store.CaughtUp) and
// holds this process's unfenced registration (broker_epoch.go).
func (b *Broker) metaCaughtUp() bool {
	if b.caughtUp.Load() {
		return true
	}
	if !b.meta.CaughtUp() || !b.unfenced() {
		return false
	}
	b.caughtUp.Store(true)
	return true
}

// awaitMetadata reconciles once the metadata has caught up after a start,
// so that partitions take their roles even when no entry arrives then.
func (b *Broker) awaitMetadata() {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !b.metaCaughtUp() {
		select {
		case <-b.closing:
			return
		case <-t.C:
		}
	}
	if err := b.reconcile(); err != nil {
		b.logger.Error("apply metadata", "err", err)
	}
}

// replicated reports a node that places partitions over the cluster's
// brokers; a standalone node (no gossip) holds and leads every partition.
func (b *Broker) replicated() bool { return b.cfg.GossipAddr != "" }

// hostsReplica reports whether this node holds a replica of mp.
func (b *Broker) hostsReplica(mp meta.Partition) bool {
	return !b.replicated() || slices.Contains(mp.Replicas, b.cfg.NodeID)
}

// applyRole brings p to the role the metadata gives it.
func (b *Broker) applyRole(p *partition, r *role) {
	old := p.role.Load()
	if old != nil && old.leader == r.leader && old.epoch == r.epoch && old.pepoch == r.pepoch {
		return
	}
	newLeadership := r.leads() && (old == nil || !old.leads() || old.epoch != r.epoch)
	p.roleMu.Lock()
	if newLeadership {
		if err := p.log.AssignEpoch(r.epoch); err != nil {
			b.logger.Error("record leader epoch", "topic", p.t.name, "partition", p.index, "epoch", r.epoch, "err", err)
		}
	}
	p.epoch.Store(r.epoch)
	p.log.SetUncached(!r.leads())
	p.repMu.Lock()
	// A replica just opened starts from its checkpointed high watermark.
	wasAlone := old != nil && old.leads() && old.alone()
	if r.leads() && !r.alone() && wasAlone {
		// The high watermark was the log end offset; it never goes back.
		p.hw.Store(max(p.hw.Load(), p.log.EndOffset()))
	}
	if newLeadership {
		now := time.Now()
		p.epochStart = p.log.EndOffset()
		p.followers = map[int32]*followerState{}
		for _, id := range r.replicas {
			if id != r.self {
				f := &followerState{leo: -1}
				if slices.Contains(r.isr, id) {
					f.lastCaughtUp = now // a new leader gives its ISR the full lag time
				}
				p.followers[id] = f
			}
		}
	} else if r.leads() {
		for _, id := range r.replicas {
			if _, ok := p.followers[id]; !ok && id != r.self {
				p.followers[id] = &followerState{leo: -1}
			}
		}
	} else {
		p.followers = nil
	}
	p.role.Store(r)
	if r.leads() {
		p.advanceHWLocked(r)
	}
	p.broadcastLocked()
	p.repMu.Unlock()
	p.roleMu.Unlock()
	if r.leads() {
		b.fetchers.remove(p)
	} else {
		b.fetchers.follow(p, r.leader, r.epoch)
	}
	p.notify() // long-polling fetches re-check their leadership
	if p.t.internal && (old == nil || old.leads() != r.leads() || old.epoch != r.epoch) {
		b.coordinatorLeadership(p, r.leads(), r.epoch)
	}
}

// advanceHWLocked moves the high watermark up to the lowest log end offset
// of the ISR; repMu is held.
func (p *partition) advanceHWLocked(r *role) {
	if r.alone() {
		return
	}
	hw := p.log.EndOffset()
	for _, id := range r.isr {
		if id == r.self {
			continue
		}
		f := p.followers[id]
		if f == nil || f.leo < 0 {
			return // not fetched in this epoch yet: nothing to go on
		}
		hw = min(hw, f.leo)
	}
	if hw > p.hw.Load() {
		p.hw.Store(hw)
		p.broadcastLocked()
		p.notify() // long-polling consumers read up to the high watermark
	}
}

// followerFetched records that follower id asked for offset, so holds
// everything below it, and reports whether it should join the ISR.
func (p *partition) followerFetched(r *role, id int32, offset, leo int64, now time.Time) (join bool) {
	p.repMu.Lock()
	defer p.repMu.Unlock()
	f := p.followers[id]
	if f == nil {
		return false
	}
	switch {
	case offset >= leo:
		f.lastCaughtUp = now
	case offset >= f.lastFetchLeader && !f.lastFetch.IsZero():
		f.lastCaughtUp = f.lastFetch
	}
	f.leo, f.lastFetch, f.lastFetchLeader = offset, now, leo
	p.advanceHWLocked(r)
	return !slices.Contains(r.isr, id) && offset >= p.hw.Load() && offset >= p.epochStart
}

// laggingFollowers lists the ISR members that have not caught up with the
// leader's log end offset for longer than maxLag.
func (p *partition) laggingFollowers(r *role, maxLag time.Duration, now time.Time) []int32 {
	p.repMu.Lock()
	defer p.repMu.Unlock()
	var out []int32
	for _, id := range r.isr {
		if f := p.followers[id]; id != r.self && f != nil && now.Sub(f.lastCaughtUp) > maxLag {
			out = append(out, id)
		}
	}
	return out
}

// replicaWait is an acks=all produce waiting for the ISR.
type replicaWait struct {
	p    *partition
	role *role
	end  int64 // the high watermark that covers the produced records
}

// wait blocks until the high watermark covers the records and returns the
// partition's error code: NOT_LEADER_OR_FOLLOWER when the leadership moved
// on (the records may be lost with it; the producer retries), REQUEST_TIMED_OUT
// at the request's deadline, NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR
// fell below min.insync.replicas meanwhile (Kafka's answers).
func (w *replicaWait) wait(b *Broker, deadline time.Time) int16 {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		ch := w.p.changed()
		r := w.p.role.Load()
		if !r.leads() || r.epoch != w.role.epoch {
			return kerr.NotLeaderForPartition.Code
		}
		if w.p.highWatermark() >= w.end {
			if len(r.isr) < w.p.t.settings.Load().minInsync {
				return kerr.NotEnoughReplicasAfterAppend.Code
			}
			return 0
		}
		select {
		case <-ch:
		case <-timer.C:
			b.logger.Warn("acks=all timed out waiting for the ISR", "topic", w.p.t.name, "partition", w.p.index,
				"end", w.end, "high_watermark", w.p.highWatermark(), "isr", r.isr, "followers", w.p.followerOffsets())
			return kerr.RequestTimedOut.Code
		case <-b.closing:
			return kerr.NotLeaderForPartition.Code
		}
	}
}

// followerOffsets describes what the leader knows of its followers, for
// logs: id → fetch offset (-1: none in this epoch).
func (p *partition) followerOffsets() map[int32]int64 {
	p.repMu.Lock()
	defer p.repMu.Unlock()
	out := make(map[int32]int64, len(p.followers))
	for id, f := range p.followers {
		out[id] = f.leo
	}
	return out
}
