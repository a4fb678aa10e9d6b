package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestPartitionMoveAndHealth moves a partition's only replica to two other
// brokers with `sluice cluster partitions move`: the data follows, the old
// copy is deleted, and `sluice cluster health` reports a broker down and
// under-replicated partitions once one is killed.
func TestPartitionMoveAndHealth(t *testing.T) {
	nodes := startCluster(t, 3)
	byID := map[int32]*clusterNode{}
	var seeds []string
	for _, n := range nodes {
		byID[n.id] = n
		seeds = append(seeds, n.kafka)
	}
	waitFor(t, "3 brokers", func(ctx context.Context) (bool, string) {
		m, err := nodes[0].metadata(ctx)
		if err != nil {
			return false, err.Error()
		}
		return len(m.Brokers) == 3, fmt.Sprint(len(m.Brokers))
	})
	const topic = "moving"
	createReplicated(t, nodes[0], topic, 1, 1)
	var from int32
	waitFor(t, "the partition's replica", func(ctx context.Context) (bool, string) {
		ps, err := nodes[0].partitions(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		from = ps[0].Leader
		return from > 0, fmt.Sprint(ps[0])
	})

	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 5000
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Value: []byte(recordValue(0, i))}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	var target []int32
	for _, nd := range nodes {
		if nd.id != from {
			target = append(target, nd.id)
		}
	}
	arg := fmt.Sprintf("%s/0:%d,%d", topic, target[0], target[1])
	if out, err := nodes[0].cli(ctx, "", "cluster", "partitions", "move", "-p", arg); err != nil || !strings.Contains(out, "OK") {
		t.Fatalf("move %s: %v\n%s", arg, err, out)
	}
	waitFor(t, "the move completes", func(ctx context.Context) (bool, string) {
		ps, err := nodes[0].partitions(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		p := ps[0]
		return slices.Equal(p.Replicas, target) && len(p.ISR) == 2 && p.Leader == target[0], fmt.Sprintf("%+v", p)
	})
	if out, err := nodes[0].cli(ctx, "", "cluster", "partitions", "move-status"); err != nil || strings.Contains(out, topic) {
		t.Errorf("move-status after the move: %v\n%s", err, out)
	}
	oldDir := filepath.Join(byID[from].dir, "data", topic+"-0")
	waitFor(t, "the old replica is deleted", func(context.Context) (bool, string) {
		_, err := os.Stat(oldDir)
		return os.IsNotExist(err), fmt.Sprint(err)
	})
	read := readAll(t, seeds, topic)
	if len(read) != n {
		t.Fatalf("read %d records after the move, want %d", len(read), n)
	}
	for i, r := range read {
		if r.value != recordValue(0, i) || r.offset != int64(i) {
			t.Fatalf("record %d: %+v", i, r)
		}
	}

	// Health: all well, then a broker down with RF 3 partitions.
	createReplicated(t, nodes[0], "health", 3, 3)
	waitFullISR(t, nodes[0], "health", 3)
	if out, err := nodes[0].cli(ctx, "", "cluster", "health", "--fail"); err != nil || !strings.Contains(out, "true") {
		t.Fatalf("health of a whole cluster: %v\n%s", err, out)
	}
	victim := byID[target[1]]
	victim.kill()
	waitFor(t, "health reports the broker down", func(ctx context.Context) (bool, string) {
		out, err := nodes[0].cli(ctx, "", "cluster", "health", "--fail")
		if victim == nodes[0] {
			out, err = nodes[1].cli(ctx, "", "cluster", "health", "--fail")
		}
		ok := err != nil && strings.Contains(out, "nodes_down") && strings.Contains(out, "under_replicated_partitions") &&
			strings.Contains(out, fmt.Sprint(victim.id))
		return ok, out
	})
}
