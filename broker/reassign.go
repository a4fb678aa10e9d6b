package broker

import (
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker/meta"
)

// Partition reassignment, Kafka's way (KIP-455):
//   - AlterPartitionReassignments (v0-1, on the controller) sets a target
//     replica list: the partition's replicas become target + original
//     (minus duplicates), with the new ones adding and the dropped ones
//     removing; the new replicas open and fetch as followers.
//   - the controller (controller.go) completes it once every adding
//     replica is in the ISR: replicas = target, removing replicas leave the
//     ISR (and the leadership, to an in-sync target replica), and their
//     brokers delete their copy (reconcile).
//   - a null replica list cancels: back to the original replicas.
//   - ListPartitionReassignments (v0) lists the ongoing ones.

func init() {
	register(45, 0, 1, handleAlterPartitionReassignments)
	register(46, 0, 0, handleListPartitionReassignments)
}

func handleAlterPartitionReassignments(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	resp.AllowReplicationFactorChange = req.AllowReplicationFactorChange
	if !b.meta.IsLeader() {
		resp.ErrorCode = kerr.NotController.Code
		return done(resp)
	}
	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = rp.Partition
			code, msg := b.reassign(rt.Topic, rp.Partition, rp.Replicas, r.version < 1 || req.AllowReplicationFactorChange)
			sp.ErrorCode = code
			if msg != "" {
				sp.ErrorMessage = &msg
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return done(resp)
}

// reassign starts (target non-nil) or cancels (nil) one reassignment.
func (b *Broker) reassign(topic string, idx int32, target []int32, rfChange bool) (int16, string) {
	mt, ok := b.meta.Topic(topic)
	if !ok || idx < 0 || int(idx) >= len(mt.Partitions) {
		return kerr.UnknownTopicOrPartition.Code, ""
	}
	mp := mt.Partitions[idx]
	original := slices.DeleteFunc(slices.Clone(mp.Replicas), func(id int32) bool { return slices.Contains(mp.Adding, id) })
	ch := meta.PartitionChange{Topic: topic, Partition: idx, PartitionEpoch: mp.PartitionEpoch, Leader: mp.Leader, ISR: mp.ISR}
	if target == nil {
		if len(mp.Adding) == 0 && len(mp.Removing) == 0 {
			return kerr.NoReassignmentInProgress.Code, fmt.Sprintf("No reassignment in progress for %s-%d.", topic, idx)
		}
		ch.Replicas = original
		ch.Reassign = &meta.Reassignment{}
		ch.ISR = slices.DeleteFunc(slices.Clone(mp.ISR), func(id int32) bool { return !slices.Contains(original, id) })
	} else {
		if msg := b.checkReplicas(target); msg != "" {
			return kerr.InvalidReplicaAssignment.Code, msg
		}
		if !rfChange && len(target) != len(original) {
			return kerr.InvalidReplicationFactor.Code, "The replication factor cannot change in this reassignment."
		}
		ra := &meta.Reassignment{}
		for _, id := range target {
			if !slices.Contains(original, id) {
				ra.Adding = append(ra.Adding, id)
			}
		}
		replicas := slices.Clone(target)
		for _, id := range original {
			if !slices.Contains(target, id) {
				ra.Removing = append(ra.Removing, id)
				replicas = append(replicas, id)
			}
		}
		if len(ra.Adding) == 0 && len(ra.Removing) == 0 && slices.Equal(target, mp.Replicas) {
			return 0, "" // already there
		}
		ch.Replicas, ch.Reassign = replicas, ra
		ch.ISR = slices.DeleteFunc(slices.Clone(mp.ISR), func(id int32) bool { return !slices.Contains(replicas, id) })
	}
	if ch.Leader >= 0 && !slices.Contains(ch.ISR, ch.Leader) {
		ch.Leader = -1 // the controller elects one at its next pass
	}
	return b.commitChange(ch, kerr.InvalidReplicaAssignment.Code)
}

// commitChange proposes one partition change and maps the outcome to a
// Kafka error code and message; invalid is the code of a change the
// metadata refuses as invalid (it differs between the APIs).
func (b *Broker) commitChange(ch meta.PartitionChange, invalid int16) (int16, string) {
	err := b.meta.ChangePartitions([]meta.PartitionChange{ch})[0]
	switch {
	case err == nil:
		return 0, ""
	case notController(err):
		return kerr.NotController.Code, ""
	case errors.Is(err, meta.ErrStalePartitionEpoch):
		return kerr.InvalidUpdateVersion.Code, "The partition changed meanwhile; retry."
	case errors.Is(err, meta.ErrInvalidChange):
		return invalid, err.Error()
	case errors.Is(err, meta.ErrUnknownPartition):
		return kerr.UnknownTopicOrPartition.Code, ""
	}
	return kerr.UnknownServerError.Code, err.Error()
}

// completeReassignment is the change that finishes a reassignment whose
// adding replicas are all in sync, if it can finish now.
func completeReassignment(mp meta.Partition, alive map[int32]bool) (meta.PartitionChange, bool) {
	if len(mp.Adding) == 0 && len(mp.Removing) == 0 {
		return meta.PartitionChange{}, false
	}
	for _, id := range mp.Adding {
		if !slices.Contains(mp.ISR, id) {
			return meta.PartitionChange{}, false
		}
	}
	target := slices.DeleteFunc(slices.Clone(mp.Replicas), func(id int32) bool { return slices.Contains(mp.Removing, id) })
	isr := slices.DeleteFunc(slices.Clone(mp.ISR), func(id int32) bool { return !slices.Contains(target, id) })
	ch := meta.PartitionChange{PartitionEpoch: mp.PartitionEpoch, Leader: mp.Leader, Replicas: target, ISR: isr, Reassign: &meta.Reassignment{}}
	if !slices.Contains(isr, ch.Leader) {
		ch.Leader = -1
		for _, id := range target {
			if alive[id] && slices.Contains(isr, id) {
				ch.Leader = id
				break
			}
		}
		if ch.Leader < 0 {
			return meta.PartitionChange{}, false // wait for an in-sync target replica
		}
	}
	return ch, true
}

func handleListPartitionReassignments(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.ListPartitionReassignmentsRequest)
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	if !b.meta.IsLeader() {
		resp.ErrorCode = kerr.NotController.Code
		return done(resp)
	}
	want := map[string][]int32{}
	for _, rt := range req.Topics {
		want[rt.Topic] = rt.Partitions
	}
	for _, mt := range b.meta.Topics() {
		parts, asked := want[mt.Name]
		if req.Topics != nil && !asked {
			continue
		}
		st := kmsg.NewListPartitionReassignmentsResponseTopic()
		st.Topic = mt.Name
		for i, mp := range mt.Partitions {
			if len(mp.Adding) == 0 && len(mp.Removing) == 0 {
				continue
			}
			if req.Topics != nil && !slices.Contains(parts, int32(i)) {
				continue
			}
			sp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
			sp.Partition, sp.Replicas, sp.AddingReplicas, sp.RemovingReplicas = int32(i), mp.Replicas, mp.Adding, mp.Removing
			st.Partitions = append(st.Partitions, sp)
		}
		if len(st.Partitions) > 0 {
			resp.Topics = append(resp.Topics, st)
		}
	}
	return done(resp)
}
