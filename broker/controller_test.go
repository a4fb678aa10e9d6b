package broker

import (
	"slices"
	"testing"

	"github.com/sluice-io/sluice/broker/meta"
)

func TestElectOne(t *testing.T) {
	all := map[int32]bool{1: true, 2: true, 3: true}
	no := func(ids ...int32) map[int32]bool {
		m := map[int32]bool{1: true, 2: true, 3: true}
		for _, id := range ids {
			delete(m, id)
		}
		return m
	}
	part := func(leader int32, isr ...int32) meta.Partition {
		return meta.Partition{Leader: leader, Replicas: []int32{1, 2, 3}, ISR: isr, PartitionEpoch: 7}
	}
	for _, c := range []struct {
		name      string
		p         meta.Partition
		alive     map[int32]bool
		unclean   bool
		preferred bool
		change    bool
		leader    int32
		isr       []int32
	}{
		{"healthy", part(1, 1, 2, 3), all, false, false, false, 0, nil},
		{"dead follower leaves the ISR", part(1, 1, 2, 3), no(3), false, false, true, 1, []int32{1, 2}},
		{"dead leader: first live ISR replica", part(1, 1, 2, 3), no(1), false, false, true, 2, []int32{2, 3}},
		{"dead leader: replica order, not ISR order", part(1, 1, 3, 2), no(1), false, false, true, 2, []int32{3, 2}},
		{"out-of-sync replica never leads", part(1, 1, 3), no(1), false, false, true, 3, []int32{3}},
		{"no live ISR: offline, ISR kept", part(1, 1), no(1), false, false, true, -1, []int32{1}},
		{"already offline: no change", part(-1, 1), no(1), false, false, false, 0, nil},
		{"offline, ISR member back", part(-1, 1), all, false, false, true, 1, []int32{1}},
		{"unclean election", part(1, 1), no(1), true, false, true, 2, []int32{2}},
		{"preferred leader back", part(2, 1, 2, 3), all, false, true, true, 1, []int32{1, 2, 3}},
		{"preferred leader not in sync", part(2, 2, 3), all, false, true, false, 0, nil},
		{"preferred check off", part(2, 1, 2, 3), all, false, false, false, 0, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			ch, ok := electOne(c.p, c.alive, c.unclean, c.preferred)
			if ok != c.change {
				t.Fatalf("change = %v (%+v), want %v", ok, ch, c.change)
			}
			if !ok {
				return
			}
			if ch.Leader != c.leader || !slices.Equal(ch.ISR, c.isr) || ch.PartitionEpoch != 7 {
				t.Errorf("change %+v, want leader %d isr %v at partition epoch 7", ch, c.leader, c.isr)
			}
		})
	}
}

func TestCompleteReassignment(t *testing.T) {
	all := map[int32]bool{1: true, 2: true, 3: true, 4: true}
	// Moving [1 2] to [3 4]: replicas [3 4 1 2] while it runs.
	p := meta.Partition{Leader: 1, Replicas: []int32{3, 4, 1, 2}, ISR: []int32{1, 2, 3}, Adding: []int32{3, 4}, Removing: []int32{1, 2}}
	if ch, ok := completeReassignment(p, all); ok {
		t.Fatalf("completed before every adding replica is in sync: %+v", ch)
	}
	p.ISR = []int32{1, 2, 3, 4}
	ch, ok := completeReassignment(p, all)
	if !ok || !slices.Equal(ch.Replicas, []int32{3, 4}) || !slices.Equal(ch.ISR, []int32{3, 4}) || ch.Leader != 3 ||
		ch.Reassign == nil || len(ch.Reassign.Adding)+len(ch.Reassign.Removing) != 0 {
		t.Errorf("completion %+v (ok %v)", ch, ok)
	}
	if _, ok := completeReassignment(meta.Partition{Leader: 1, Replicas: []int32{1}, ISR: []int32{1}}, all); ok {
		t.Error("a partition without a reassignment was completed")
	}
}
