package main

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
)

func TestHealthOf(t *testing.T) {
	m := kadm.Metadata{
		Controller: 1,
		Brokers:    kadm.BrokerDetails{{NodeID: 1}, {NodeID: 2}},
		Topics: kadm.TopicDetails{
			"a": {Topic: "a", Partitions: kadm.PartitionDetails{
				0: {Partition: 0, Leader: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2}},
				1: {Partition: 1, Leader: -1, Replicas: []int32{3}, ISR: []int32{3}},
				2: {Partition: 2, Leader: 2, Replicas: []int32{2, 1}, ISR: []int32{2, 1}},
			}},
		},
	}
	h := healthOf(m)
	if h.Healthy {
		t.Fatal("healthy with a broker down")
	}
	if !slices.Equal(h.BrokersDown, []int32{3}) || len(h.Leaderless) != 1 || h.Leaderless[0].Partition != 1 ||
		len(h.UnderReplicated) != 1 || h.UnderReplicated[0].Partition != 0 {
		t.Errorf("health: %+v", h)
	}
	want := []string{"nodes_down", "leaderless_partitions", "under_replicated_partitions"}
	if !slices.Equal(h.Reasons, want) {
		t.Errorf("reasons %v, want %v", h.Reasons, want)
	}
	delete(m.Topics["a"].Partitions, 0)
	delete(m.Topics["a"].Partitions, 1)
	if h := healthOf(m); !h.Healthy || len(h.Reasons) != 0 {
		t.Errorf("all well: %+v", h)
	}
}

func TestParseMove(t *testing.T) {
	topic, p, rs, err := parseMove("orders/3:2,3,1")
	if err != nil || topic != "orders" || p != 3 || !slices.Equal(rs, []int32{2, 3, 1}) {
		t.Errorf("parseMove = %q %d %v %v", topic, p, rs, err)
	}
	for _, bad := range []string{"orders/3", "orders:1", "/3:1", "orders/x:1", "orders/1:a", "orders/1:-2"} {
		if _, _, _, err := parseMove(bad); err == nil {
			t.Errorf("parseMove(%q) accepted", bad)
		}
	}
}
