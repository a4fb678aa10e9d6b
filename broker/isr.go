package broker

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ISR changes by the leader (Kafka's AlterPartition): a follower that has
// not caught up with the leader's log end offset for replica.lag.time.max.ms
// leaves the ISR; one whose fetch offset reaches the high watermark (and
// the start of the current leader epoch) joins it. The leader proposes, the
// controller commits (alter_partition.go), and the new ISR comes back with
// the metadata. One change per partition is in flight at a time.

// expandISR proposes adding follower id to the ISR.
func (b *Broker) expandISR(p *partition, r *role, id int32) {
	b.proposeISR(p, r, append(slices.Clone(r.isr), id))
}

// shrinkISRs drops lagging followers from the ISR of every partition this
// broker leads.
func (b *Broker) shrinkISRs() {
	now := time.Now()
	for _, p := range b.allPartitions() {
		r := p.role.Load()
		if !r.leads() || r.alone() {
			continue
		}
		lag := p.laggingFollowers(r, b.cfg.ReplicaLagTimeMax, now)
		if len(lag) == 0 {
			continue
		}
		isr := slices.DeleteFunc(slices.Clone(r.isr), func(id int32) bool { return slices.Contains(lag, id) })
		b.logger.Info("shrinking ISR", "topic", p.t.name, "partition", p.index, "lagging", lag, "isr", isr)
		b.proposeISR(p, r, isr)
	}
}

// proposeISR sends an ISR change in the background unless one is in flight.
func (b *Broker) proposeISR(p *partition, r *role, isr []int32) {
	if !p.isrBusy.CompareAndSwap(false, true) {
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer p.isrBusy.Store(false)
		code := b.alterPartition(p, r, isr)
		if code != 0 {
			b.logger.Debug("ISR change refused", "topic", p.t.name, "partition", p.index, "isr", isr, "err", kerr.ErrorForCode(code))
			return
		}
		// Hold the next proposal until the change is applied here, so it
		// is computed from the new partition epoch.
		deadline := time.Now().Add(2 * time.Second)
		for p.role.Load().pepoch == r.pepoch && time.Now().Before(deadline) {
			select {
			case <-p.changed():
			case <-time.After(50 * time.Millisecond):
			case <-b.closing:
				return
			}
		}
	}()
}

// alterPartition commits an ISR change: directly on the controller, else
// with AlterPartition v3 to it. Each ISR member goes with its broker epoch
// (KIP-903), so the controller refuses to add a follower whose process
// restarted since. Kafka takes a joining follower's epoch from its Fetch
// requests (ReplicaState, Fetch v15+); our followers fetch with v12, so the
// leader reads the epoch registered in its metadata when it decides. The
// difference: a follower that caught up and then restarted before the
// leader applied its new registration is proposed with its old epoch and
// refused, and one whose new registration is applied is proposed with the
// new epoch; that one is fenced at first (refused as well) and by the time
// it is unfenced the leader has seen it fetch as the new process.
func (b *Broker) alterPartition(p *partition, r *role, isr []int32) int16 {
	epoch, ok := b.ownBrokerEpoch()
	if !ok {
		// Not registered with this incarnation yet: nothing to send that
		// the controller would take, so wait (a later fetch or shrink pass
		// proposes again).
		return kerr.StaleBrokerEpoch.Code
	}
	members := make([]isrMember, len(isr))
	for i, id := range isr {
		members[i] = isrMember{id: id, epoch: b.brokerEpoch(id)}
	}
	if b.meta.IsLeader() || b.ctl == nil {
		return b.changeISR(r.self, p.t.name, p.index, r.epoch, r.pepoch, members)
	}
	req := kmsg.NewPtrAlterPartitionRequest()
	req.BrokerID = r.self
	req.BrokerEpoch = epoch
	rt := kmsg.NewAlterPartitionRequestTopic()
	rt.Topic, rt.TopicID = p.t.name, p.t.id
	rp := kmsg.NewAlterPartitionRequestTopicPartition()
	rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch, rp.NewISR = p.index, r.epoch, r.pepoch, isr
	for _, m := range members {
		e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
		e.BrokerID, e.BrokerEpoch = m.id, m.epoch
		rp.NewEpochISR = append(rp.NewEpochISR, e)
	}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := b.ctl.send(ctx, req, func(r kmsg.Response) int16 { return r.(*kmsg.AlterPartitionResponse).ErrorCode })
	if err != nil {
		b.logger.Debug("alter partition", "topic", p.t.name, "partition", p.index, "err", err)
		return kerr.RequestTimedOut.Code
	}
	ar := resp.(*kmsg.AlterPartitionResponse)
	if ar.ErrorCode != 0 {
		return ar.ErrorCode
	}
	for _, t := range ar.Topics {
		for _, sp := range t.Partitions {
			return sp.ErrorCode
		}
	}
	return kerr.UnknownServerError.Code
}
