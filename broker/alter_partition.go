package broker

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker/meta"
)

// AlterPartition: v0-3
//
// A partition leader asks the controller to change its ISR (isr.go). The
// controller checks, as Kafka's KRaft controller does:
//   - the request's BrokerEpoch is the leader's registered broker epoch,
//     else the whole request fails with STALE_BROKER_EPOCH (a restarted
//     process, or one not registered yet);
//   - per partition, the leader and its leader and partition epochs are
//     current;
//   - every new ISR member is registered and not fenced, and with v3
//     (KIP-903) its broker epoch, when given (not -1), is its registered
//     one; a joining member must also be alive. Otherwise the partition
//     fails with INELIGIBLE_REPLICA.
// The change is committed through the metadata quorum, so a leader cut off
// from the quorum cannot shrink its ISR to accept acks=all writes alone.
// Topics are named (v0-1) or by id (v2+), the ISR a list (v0-2) or with
// broker epochs (v3).

func init() { register(56, 0, 3, handleAlterPartition) }

// isrMember is one replica of a proposed ISR with the broker epoch the
// leader gives for it (-1: not checked).
type isrMember struct {
	id    int32
	epoch int64
}

func handleAlterPartition(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.AlterPartitionRequest)
	resp := req.ResponseKind().(*kmsg.AlterPartitionResponse)
	if !b.meta.IsLeader() {
		resp.ErrorCode = kerr.NotController.Code
		return done(resp)
	}
	if b.staleBrokerEpoch(req.BrokerID, req.BrokerEpoch) {
		resp.ErrorCode = kerr.StaleBrokerEpoch.Code
		return done(resp)
	}
	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionResponseTopic()
		st.Topic, st.TopidID = rt.Topic, rt.TopicID
		name := rt.Topic
		if r.version >= 2 {
			if t, ok := b.meta.TopicByID(rt.TopicID); ok {
				name = t.Name
			} else {
				name = ""
			}
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionResponseTopicPartition()
			sp.Partition = rp.Partition
			var isr []isrMember
			if r.version >= 3 {
				for _, e := range rp.NewEpochISR {
					isr = append(isr, isrMember{e.BrokerID, e.BrokerEpoch})
				}
			} else {
				for _, id := range rp.NewISR {
					isr = append(isr, isrMember{id, -1})
				}
			}
			if name == "" {
				sp.ErrorCode = kerr.UnknownTopicID.Code
			} else {
				sp.ErrorCode = b.changeISR(req.BrokerID, name, rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch, isr)
			}
			if mt, ok := b.meta.Topic(name); ok && rp.Partition >= 0 && int(rp.Partition) < len(mt.Partitions) {
				mp := mt.Partitions[rp.Partition]
				sp.LeaderID, sp.LeaderEpoch, sp.ISR, sp.PartitionEpoch = mp.Leader, mp.LeaderEpoch, mp.ISR, mp.PartitionEpoch
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return done(resp)
}

// changeISR is the controller's check and commit of a leader's ISR change;
// the leader's broker epoch has been checked already.
func (b *Broker) changeISR(leader int32, topic string, idx, leaderEpoch, partitionEpoch int32, members []isrMember) int16 {
	mt, ok := b.meta.Topic(topic)
	if !ok || idx < 0 || int(idx) >= len(mt.Partitions) {
		return kerr.UnknownTopicOrPartition.Code
	}
	mp := mt.Partitions[idx]
	isr := make([]int32, len(members))
	for i, m := range members {
		isr[i] = m.id
	}
	switch {
	case mp.Leader != leader:
		return kerr.NotLeaderForPartition.Code
	case leaderEpoch < mp.LeaderEpoch:
		return kerr.FencedLeaderEpoch.Code
	case leaderEpoch > mp.LeaderEpoch:
		return kerr.UnknownLeaderEpoch.Code
	case partitionEpoch != mp.PartitionEpoch:
		return kerr.InvalidUpdateVersion.Code
	case !slices.Contains(isr, leader):
		return kerr.InvalidRequest.Code
	}
	if b.ineligibleISR(mp, members) {
		return kerr.IneligibleReplica.Code
	}
	code, msg := b.commitChange(meta.PartitionChange{
		Topic: topic, Partition: idx, PartitionEpoch: partitionEpoch, Leader: leader, ISR: isr,
	}, kerr.InvalidRequest.Code)
	if code == kerr.UnknownServerError.Code {
		b.logger.Error("alter partition", "topic", topic, "partition", idx, "err", msg)
	}
	return code
}

// ineligibleISR reports whether a proposed ISR names a replica that may not
// be in sync: a fenced one (a restarted broker whose old incarnation the
// controller is still taking out), one whose given epoch is not its
// registered one (KIP-903: the incarnation that caught up is gone), or a
// joining one that is not alive.
func (b *Broker) ineligibleISR(mp meta.Partition, members []isrMember) bool {
	alive := b.eligibleBrokers()
	for _, m := range members {
		if b.gossip != nil {
			// -1: no epoch given (a leader of a version before KIP-903).
			if r, ok := b.meta.Broker(m.id); !ok || r.Fenced || (m.epoch != -1 && r.Epoch != m.epoch) {
				return true
			}
		}
		if !slices.Contains(mp.ISR, m.id) && !alive[m.id] {
			return true
		}
	}
	return false
}
