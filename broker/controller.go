package broker

import (
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/sluice-io/sluice/broker/meta"
)

// The controller (the raft leader) keeps every partition led by a live
// in-sync replica, as Kafka's KRaft controller does:
//   - a leader that gossip reports dead or leaving is replaced by the first
//     live replica of the ISR, in replica order, at a new leader epoch;
//   - dead and leaving brokers leave the ISRs, so acks=all carries on with
//     the live ones (down to min.insync.replicas);
//   - with no live ISR member the partition goes offline (leader -1) and
//     keeps its ISR, unless unclean.leader.election.enable lets any live
//     replica lead; an ISR member coming back leads it again;
//   - every leader.imbalance.check.interval, leadership goes back to the
//     preferred (first) replica where it is alive and in sync;
//   - a broker that re-registered with a new incarnation (restarted, maybe
//     faster than gossip declares a death) is fenced: it counts as dead, so
//     the steps above take its old incarnation's leaderships and ISR places
//     away; once none is left it is unfenced and counts as alive again
//     (meta/fencing.go).
// Decisions are proposed with the partition epoch they were computed from,
// so a concurrent ISR change by a leader makes one of them retry.

// controllerInterval is how often the controller checks the partitions.
const controllerInterval = 200 * time.Millisecond

// runController is the controller loop of a clustered node; it acts only
// while this node is the raft leader.
func (b *Broker) runController() {
	t := time.NewTicker(controllerInterval)
	defer t.Stop()
	var members <-chan struct{}
	if b.gossip != nil {
		members = b.gossip.Watch() // a death is acted on at once, not at the next tick
	}
	lastPreferred := time.Now()
	var last passInput
	for {
		select {
		case <-b.closing:
			return
		case <-t.C:
		case <-members:
		}
		if !b.meta.IsLeader() {
			last = passInput{} // a new term starts with a pass
			continue
		}
		preferred := !b.cfg.DisableLeaderRebalance && time.Since(lastPreferred) >= b.cfg.LeaderImbalanceCheckInterval
		if preferred {
			lastPreferred = time.Now()
		}
		// A pass copies every topic: run it only when the metadata or the
		// live brokers changed since the last one, or to rebalance.
		in := passInput{version: b.meta.Version(), alive: b.eligibleBrokers(), fenced: b.fencedAlive()}
		if !preferred && in.equal(last) {
			continue
		}
		last = in
		if !b.electLeaders(in.alive, preferred) {
			last = passInput{} // retried at the next tick
		}
		b.unfenceBrokers(in.fenced)
	}
}

// passInput is what a controller pass decides on.
type passInput struct {
	version uint64
	alive   map[int32]bool
	fenced  map[int32]int64 // fenced brokers gossip reports alive: their epochs
}

func (a passInput) equal(o passInput) bool {
	return a.version == o.version && maps.Equal(a.alive, o.alive) && maps.Equal(a.fenced, o.fenced)
}

// electLeaders proposes the changes the live brokers call for and reports
// whether every one was committed.
func (b *Broker) electLeaders(alive map[int32]bool, preferred bool) bool {
	var changes []meta.PartitionChange
	for _, mt := range b.meta.Topics() {
		unclean := b.topicUnclean(mt)
		for i, mp := range mt.Partitions {
			ch, ok := electOne(mp, alive, unclean, preferred)
			if !ok {
				ch, ok = completeReassignment(mp, alive)
			}
			if ok {
				ch.Topic, ch.Partition = mt.Name, int32(i)
				changes = append(changes, ch)
			}
		}
	}
	if len(changes) == 0 {
		return true
	}
	ok := true
	for i, err := range b.meta.ChangePartitions(changes) {
		ch := changes[i]
		ok = ok && err == nil
		switch {
		case err == nil:
			b.logger.Info("partition change", "topic", ch.Topic, "partition", ch.Partition, "leader", ch.Leader, "isr", ch.ISR)
		case errors.Is(err, meta.ErrStalePartitionEpoch), notController(err):
			// Recomputed at the next tick.
		default:
			b.logger.Warn("partition change", "topic", ch.Topic, "partition", ch.Partition, "err", err)
		}
	}
	return ok
}

// electOne is the change one partition needs, if any.
func electOne(mp meta.Partition, alive map[int32]bool, unclean, preferred bool) (meta.PartitionChange, bool) {
	ch := meta.PartitionChange{PartitionEpoch: mp.PartitionEpoch}
	isrAlive := slices.DeleteFunc(slices.Clone(mp.ISR), func(id int32) bool { return !alive[id] })
	if mp.Leader >= 0 && alive[mp.Leader] && slices.Contains(mp.ISR, mp.Leader) {
		if len(isrAlive) < len(mp.ISR) {
			ch.Leader, ch.ISR = mp.Leader, isrAlive
			return ch, true
		}
		if pref := mp.Replicas[0]; preferred && pref != mp.Leader && alive[pref] && slices.Contains(mp.ISR, pref) {
			ch.Leader, ch.ISR = pref, mp.ISR
			return ch, true
		}
		return ch, false
	}
	for _, id := range mp.Replicas {
		if alive[id] && slices.Contains(isrAlive, id) {
			ch.Leader, ch.ISR = id, isrAlive
			return ch, true
		}
	}
	if unclean {
		for _, id := range mp.Replicas {
			if alive[id] {
				ch.Leader, ch.ISR = id, []int32{id}
				return ch, true
			}
		}
	}
	if mp.Leader == -1 {
		return ch, false
	}
	// Offline: keep the ISR, so that its last members can lead again.
	ch.Leader, ch.ISR = -1, mp.ISR
	if len(ch.ISR) == 0 {
		ch.ISR = []int32{mp.Leader}
	}
	return ch, true
}

// topicUnclean reads unclean.leader.election.enable for a topic.
func (b *Broker) topicUnclean(mt meta.Topic) bool {
	v := topicView{explicit: mt.Configs, broker: b.cfg.Settings}
	return v.str("unclean.leader.election.enable") == "true"
}

// fencedAlive are the fenced brokers gossip reports alive and not leaving,
// with their epochs.
func (b *Broker) fencedAlive() map[int32]int64 {
	if b.gossip == nil {
		return nil
	}
	alive := map[int32]bool{}
	for _, m := range b.gossip.Members() {
		alive[m.ID] = m.Alive() && !m.Leaving
	}
	var out map[int32]int64
	for _, r := range b.meta.Brokers() {
		if r.Fenced && alive[r.ID] {
			if out == nil {
				out = map[int32]int64{}
			}
			out[r.ID] = r.Epoch
		}
	}
	return out
}

// unfenceBrokers unfences each fenced live broker whose old incarnation
// leads nothing and is in no ISR (but those of offline partitions) any
// more; the elections of this pass are committed by now.
func (b *Broker) unfenceBrokers(fenced map[int32]int64) {
	for id, epoch := range fenced {
		if !b.meta.FencedOut(id) {
			continue
		}
		switch err := b.meta.UnfenceBroker(id, epoch); {
		case err == nil:
			b.logger.Info("broker unfenced", "node", id, "broker_epoch", epoch)
		case notController(err), errors.Is(err, meta.ErrStaleBrokerEpoch), errors.Is(err, meta.ErrBrokerInUse):
			// Raced with a new term, a newer restart or a change: the
			// next pass looks again.
		default:
			b.logger.Warn("unfence broker", "node", id, "err", err)
		}
	}
}

// eligibleBrokers are the registered brokers that may lead or be in sync:
// those gossip reports alive and not leaving, and not fenced (this node
// alone when standalone).
func (b *Broker) eligibleBrokers() map[int32]bool {
	out := map[int32]bool{}
	if b.gossip == nil {
		out[b.cfg.NodeID] = true
		return out
	}
	registered := map[int32]bool{}
	for _, r := range b.meta.Brokers() {
		registered[r.ID] = !r.Fenced
	}
	for _, m := range b.gossip.Members() {
		if m.ID == b.cfg.NodeID && b.draining.Load() {
			continue
		}
		if m.Alive() && !m.Leaving && registered[m.ID] {
			out[m.ID] = true
		}
	}
	return out
}

// placementBrokers are the brokers new replicas may be placed on.
func (b *Broker) placementBrokers() []meta.Broker {
	if b.gossip == nil {
		return []meta.Broker{{ID: b.cfg.NodeID, Rack: b.cfg.Rack}}
	}
	alive := b.eligibleBrokers()
	var out []meta.Broker
	for _, r := range b.meta.Brokers() {
		if alive[r.ID] {
			out = append(out, r)
		}
	}
	return out
}
