package meta

import (
	"errors"
	"fmt"
	"slices"
)

// Partition changes: leader elections, ISR shrinks and expansions, replica
// moves. Each change names the partition epoch it was computed from and is
// refused with ErrStalePartitionEpoch when the partition changed meanwhile,
// so two deciders (the controller electing, a leader shrinking its ISR)
// never overwrite each other blindly. A new leader bumps the leader epoch;
// every change bumps the partition epoch.

const cmdChangePartitions = "change_partitions"

// Errors of partition changes.
var (
	ErrStalePartitionEpoch = errors.New("meta: partition changed since the update was computed")
	ErrUnknownPartition    = errors.New("meta: unknown partition")
	ErrInvalidChange       = errors.New("meta: invalid partition change")
)

// PartitionChange is one change of one partition.
type PartitionChange struct {
	Topic          string  `json:"topic"`
	Partition      int32   `json:"partition"`
	PartitionEpoch int32   `json:"partition_epoch"` // the epoch the change was computed from
	Leader         int32   `json:"leader"`          // -1: no leader (offline)
	ISR            []int32 `json:"isr"`
	Replicas       []int32 `json:"replicas,omitempty"` // nil keeps them
	// Reassign, when set, replaces the ongoing reassignment (empty lists
	// end it); nil keeps it.
	Reassign *Reassignment `json:"reassign,omitempty"`
}

// Reassignment is the replicas a reassignment adds and removes.
type Reassignment struct {
	Adding   []int32 `json:"adding,omitempty"`
	Removing []int32 `json:"removing,omitempty"`
}

type changePartitionsCmd struct {
	Changes []PartitionChange `json:"changes"`
}

func applyChangePartitions(cur *state, c *changePartitionsCmd, index uint64) (*state, any) {
	errs := make([]error, len(c.Changes))
	var next *state
	for i := range c.Changes {
		ch := &c.Changes[i]
		s := cur
		if next != nil {
			s = next
		}
		t := s.byName[ch.Topic]
		if t == nil || ch.Partition < 0 || int(ch.Partition) >= len(t.Partitions) {
			errs[i] = fmt.Errorf("%w: %s/%d", ErrUnknownPartition, ch.Topic, ch.Partition)
			continue
		}
		old := t.Partitions[ch.Partition]
		if old.PartitionEpoch != ch.PartitionEpoch {
			errs[i] = fmt.Errorf("%w: %s/%d at epoch %d, change from %d", ErrStalePartitionEpoch, ch.Topic, ch.Partition, old.PartitionEpoch, ch.PartitionEpoch)
			continue
		}
		replicas := old.Replicas
		if ch.Replicas != nil {
			replicas = ch.Replicas
		}
		if err := validChange(ch, replicas); err != nil {
			errs[i] = fmt.Errorf("%w: %s/%d: %v", ErrInvalidChange, ch.Topic, ch.Partition, err)
			continue
		}
		if next == nil {
			next = cur.next(index)
		}
		nt := *next.byName[ch.Topic]
		nt.Partitions = slices.Clone(nt.Partitions)
		np := Partition{
			Leader: ch.Leader, LeaderEpoch: old.LeaderEpoch, PartitionEpoch: old.PartitionEpoch + 1,
			Replicas: slices.Clone(replicas), ISR: slices.Clone(ch.ISR),
			Adding: old.Adding, Removing: old.Removing,
		}
		if ch.Reassign != nil {
			np.Adding, np.Removing = slices.Clone(ch.Reassign.Adding), slices.Clone(ch.Reassign.Removing)
		}
		if ch.Leader != old.Leader {
			np.LeaderEpoch++
		}
		nt.Partitions[ch.Partition] = np
		next.put(&nt)
	}
	return next, errs
}

// validChange checks that the ISR is a set of replicas holding the leader,
// and the leader one of the replicas (or -1).
func validChange(ch *PartitionChange, replicas []int32) error {
	if len(replicas) == 0 {
		return errors.New("no replicas")
	}
	for i, r := range replicas {
		if slices.Contains(replicas[:i], r) {
			return fmt.Errorf("replica %d listed twice", r)
		}
	}
	for i, r := range ch.ISR {
		if !slices.Contains(replicas, r) || slices.Contains(ch.ISR[:i], r) {
			return fmt.Errorf("ISR %v is not a set of the replicas %v", ch.ISR, replicas)
		}
	}
	if ch.Leader != -1 && (!slices.Contains(replicas, ch.Leader) || !slices.Contains(ch.ISR, ch.Leader)) {
		return fmt.Errorf("leader %d is not an in-sync replica of %v (ISR %v)", ch.Leader, replicas, ch.ISR)
	}
	if ra := ch.Reassign; ra != nil {
		for _, r := range append(slices.Clone(ra.Adding), ra.Removing...) {
			if !slices.Contains(replicas, r) {
				return fmt.Errorf("reassignment %+v names %d, not a replica of %v", *ra, r, replicas)
			}
		}
	}
	return nil
}

// ChangePartitions applies changes in one log entry and returns one error per
// change: nil, ErrUnknownPartition, ErrStalePartitionEpoch or
// ErrInvalidChange.
func (s *Store) ChangePartitions(changes []PartitionChange) []error {
	errs := make([]error, len(changes))
	if len(changes) == 0 {
		return errs
	}
	idx := make([]int, len(changes))
	for i := range idx {
		idx[i] = i
	}
	resp, err := s.propose(cmdChangePartitions, changePartitionsCmd{Changes: changes})
	batchResult(errs, idx, resp, err)
	return errs
}
