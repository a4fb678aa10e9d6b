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
// controller accepts only from the current leader at the current leader
// epoch and partition epoch, and only live brokers joining the ISR
// (INELIGIBLE_REPLICA otherwise); the change is committed through the
// metadata quorum, so a leader cut off from the quorum cannot shrink its ISR
// to accept acks=all writes alone. Broker epochs are not checked (Sluice
// has none yet). Topics are named (v0-1) or by id (v2+), the ISR a list
// (v0-2) or with broker epochs (v3).

func init() { register(56, 0, 3, handleAlterPartition) }

func handleAlterPartition(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.AlterPartitionRequest)
	resp := req.ResponseKind().(*kmsg.AlterPartitionResponse)
	if !b.meta.IsLeader() {
		resp.ErrorCode = kerr.NotController.Code
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
			isr := rp.NewISR
			if r.version >= 3 {
				isr = make([]int32, len(rp.NewEpochISR))
				for i, e := range rp.NewEpochISR {
					isr[i] = e.BrokerID
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

// changeISR is the controller's check and commit of a leader's ISR change.
func (b *Broker) changeISR(leader int32, topic string, idx, leaderEpoch, partitionEpoch int32, isr []int32) int16 {
	mt, ok := b.meta.Topic(topic)
	if !ok || idx < 0 || int(idx) >= len(mt.Partitions) {
		return kerr.UnknownTopicOrPartition.Code
	}
	mp := mt.Partitions[idx]
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
	alive := b.eligibleBrokers()
	for _, id := range isr {
		if !slices.Contains(mp.ISR, id) && !alive[id] {
			return kerr.IneligibleReplica.Code
		}
	}
	code, msg := b.commitChange(meta.PartitionChange{
		Topic: topic, Partition: idx, PartitionEpoch: partitionEpoch, Leader: leader, ISR: isr,
	}, kerr.InvalidRequest.Code)
	if code == kerr.UnknownServerError.Code {
		b.logger.Error("alter partition", "topic", topic, "partition", idx, "err", msg)
	}
	return code
}
