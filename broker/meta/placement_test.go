package meta

import (
	"errors"
	"slices"
	"testing"
)

func brokersOn(racks ...string) []Broker {
	out := make([]Broker, len(racks))
	for i, r := range racks {
		out[i] = Broker{ID: int32(i + 1), Rack: r}
	}
	return out
}

func TestPlaceSpreadsLeadersAndReplicas(t *testing.T) {
	bs := brokersOn("", "", "", "", "")
	got, err := Place(bs, 10, 3, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	leaders := map[int32]int{}
	replicas := map[int32]int{}
	for p, rs := range got {
		if len(rs) != 3 {
			t.Fatalf("partition %d: %v", p, rs)
		}
		for i, r := range rs {
			if slices.Contains(rs[:i], r) {
				t.Fatalf("partition %d: %d twice in %v", p, r, rs)
			}
			replicas[r]++
		}
		leaders[rs[0]]++
	}
	for _, b := range bs {
		if leaders[b.ID] != 2 || replicas[b.ID] != 6 {
			t.Errorf("broker %d leads %d and holds %d replicas; want 2 and 6 (%v)", b.ID, leaders[b.ID], replicas[b.ID], got)
		}
	}
}

func TestPlaceUsesEveryRack(t *testing.T) {
	// Three racks, uneven: every partition's three replicas must sit on
	// three different racks.
	bs := brokersOn("a", "a", "a", "b", "b", "c")
	rack := map[int32]string{}
	for _, b := range bs {
		rack[b.ID] = b.Rack
	}
	for start := range len(bs) {
		for shift := range len(bs) {
			got, err := Place(bs, 12, 3, start, shift)
			if err != nil {
				t.Fatal(err)
			}
			for p, rs := range got {
				seen := map[string]bool{}
				for _, r := range rs {
					seen[rack[r]] = true
				}
				if len(seen) != 3 {
					t.Fatalf("start %d shift %d partition %d: %v on racks %v", start, shift, p, rs, seen)
				}
			}
		}
	}
}

func TestPlaceRefusesTooManyReplicas(t *testing.T) {
	if _, err := Place(brokersOn("", ""), 1, 3, 0, 0); !errors.Is(err, ErrReplicationFactor) {
		t.Errorf("rf 3 over 2 brokers: %v", err)
	}
	if _, err := PlaceRandom(nil, 1, 1); !errors.Is(err, ErrReplicationFactor) {
		t.Errorf("no brokers: %v", err)
	}
}

func TestChangePartitions(t *testing.T) {
	s := openStore(t, Config{})
	mustCreate(t, s, TopicSpec{Name: "t", Partitions: 2, Assignment: [][]int32{{1, 2, 3}, {2, 3, 1}}})
	tp, _ := s.Topic("t")
	if p := tp.Partitions[0]; p.Leader != 1 || !slices.Equal(p.ISR, []int32{1, 2, 3}) || p.LeaderEpoch != 0 || p.PartitionEpoch != 0 {
		t.Fatalf("new partition: %+v", p)
	}
	// A shrink keeps the leader epoch; an election bumps it.
	errs := s.ChangePartitions([]PartitionChange{
		{Topic: "t", Partition: 0, PartitionEpoch: 0, Leader: 1, ISR: []int32{1, 2}},
		{Topic: "t", Partition: 1, PartitionEpoch: 0, Leader: 3, ISR: []int32{3, 1}},
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
	}
	tp, _ = s.Topic("t")
	if p := tp.Partitions[0]; p.Leader != 1 || p.LeaderEpoch != 0 || p.PartitionEpoch != 1 || !slices.Equal(p.ISR, []int32{1, 2}) {
		t.Errorf("after shrink: %+v", p)
	}
	if p := tp.Partitions[1]; p.Leader != 3 || p.LeaderEpoch != 1 || p.PartitionEpoch != 1 || !slices.Equal(p.Replicas, []int32{2, 3, 1}) {
		t.Errorf("after election: %+v", p)
	}
	for _, c := range []struct {
		ch   PartitionChange
		want error
	}{
		{PartitionChange{Topic: "t", Partition: 0, PartitionEpoch: 0, Leader: 1, ISR: []int32{1}}, ErrStalePartitionEpoch},
		{PartitionChange{Topic: "t", Partition: 5, PartitionEpoch: 1, Leader: 1, ISR: []int32{1}}, ErrUnknownPartition},
		{PartitionChange{Topic: "x", Partition: 0, PartitionEpoch: 1, Leader: 1, ISR: []int32{1}}, ErrUnknownPartition},
		{PartitionChange{Topic: "t", Partition: 0, PartitionEpoch: 1, Leader: 2, ISR: []int32{1}}, ErrInvalidChange},
		{PartitionChange{Topic: "t", Partition: 0, PartitionEpoch: 1, Leader: 1, ISR: []int32{1, 4}}, ErrInvalidChange},
		{PartitionChange{Topic: "t", Partition: 0, PartitionEpoch: 1, Leader: 1, ISR: []int32{1, 1}}, ErrInvalidChange},
	} {
		if err := s.ChangePartitions([]PartitionChange{c.ch})[0]; !errors.Is(err, c.want) {
			t.Errorf("%+v: %v, want %v", c.ch, err, c.want)
		}
	}
	tp, _ = s.Topic("t")
	if p := tp.Partitions[0]; p.PartitionEpoch != 1 {
		t.Errorf("refused changes moved the partition: %+v", p)
	}
	// Offline, then back.
	if err := s.ChangePartitions([]PartitionChange{{Topic: "t", Partition: 0, PartitionEpoch: 1, Leader: -1, ISR: []int32{1}}})[0]; err != nil {
		t.Fatal(err)
	}
	tp, _ = s.Topic("t")
	if p := tp.Partitions[0]; p.Leader != -1 || p.LeaderEpoch != 1 {
		t.Errorf("offline: %+v", p)
	}
}

func TestBrokerAddr(t *testing.T) {
	b := Broker{ID: 1, Host: "localhost", Port: 19092}
	if got := b.Addr(); got != "localhost:19092" {
		t.Errorf("Addr = %q", got)
	}
	b.Internal = "sluice1:9092"
	if got := b.Addr(); got != "sluice1:9092" {
		t.Errorf("Addr with an internal address = %q", got)
	}
	if !b.equal(b) || b.equal(Broker{ID: 1, Host: "localhost", Port: 19092}) {
		t.Error("equal ignores the internal address")
	}
}
