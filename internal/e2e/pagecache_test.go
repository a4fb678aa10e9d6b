package e2e

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/pagecache"
)

// cachedFraction is the share of a partition replica's segment pages that
// are in the page cache.
func cachedFraction(t *testing.T, n *clusterNode, topic string, p int32) float64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(n.dir, "data", fmt.Sprintf("%s-%d", topic, p), "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	var resident, total int
	for _, f := range files {
		r, n, err := pagecache.Resident(f)
		if err != nil {
			t.Fatal(err)
		}
		resident, total = resident+r, total+n
	}
	if total == 0 {
		t.Fatalf("node %d holds no data of %s-%d", n.id, topic, p)
	}
	return float64(resident) / float64(total)
}

// TestFollowersDropTheirPageCache: after acks=all writes to a RF 3
// partition, the leader's copy is in the page cache (consumers and
// followers read it) and the followers' copies are not (nobody reads them
// while they follow; kept, they would evict the leader's pages).
func TestFollowersDropTheirPageCache(t *testing.T) {
	if !pagecache.Droppable(t.TempDir()) {
		t.Skip("tmpfs pages cannot be dropped from the page cache")
	}
	nodes := startCluster(t, 3, replicatedFlags...)
	const topic = "uncached"
	createReplicated(t, nodes[0], topic, 1, 3)
	waitFullISR(t, nodes[0], topic, 3)
	var seeds []string
	for _, n := range nodes {
		seeds = append(seeds, n.kafka)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	value := bytes.Repeat([]byte("x"), 1000)
	for range 4000 { // 4 MB
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ps, err := nodes[0].partitions(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		f := cachedFraction(t, n, topic, 0)
		t.Logf("node %d (leader %v): %.0f%% of the segment pages cached", n.id, n.id == ps[0].Leader, 100*f)
		switch {
		case n.id == ps[0].Leader && f < 0.9:
			t.Errorf("leader node %d has only %.0f%% of its pages cached", n.id, 100*f)
		case n.id != ps[0].Leader && f > 0.05:
			t.Errorf("follower node %d keeps %.0f%% of its pages cached", n.id, 100*f)
		}
	}
}
