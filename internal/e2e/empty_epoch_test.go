package e2e

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFollowerRejoinsAfterEmptyEpoch: a replica that led a partition at an
// epoch in which nothing was written, and was deposed without a restart
// (here SIGSTOPped until gossip declared it dead; a gossip false alarm does
// the same), must rejoin the ISR as a follower of the leader elected after
// it.
//
// Its leader-epoch history ends with its own empty epoch E at the log end
// N; it fetches with last fetched epoch E; the new leader's history lacks
// E, so it answers with the diverging epoch below E ending at N; the
// follower truncates to N, its log end, which must drop the entry (E, N)
// as Kafka's UnifiedLog.truncateTo does: kept, the next fetch asked with E
// again, forever ("truncating diverged replica ... to=N end=N" every
// 500 ms). A restart hides it: loadEpochs drops entries at the log end.
func TestFollowerRejoinsAfterEmptyEpoch(t *testing.T) {
	const topic = "empty-epoch"
	nodes := startCluster(t, 3, replicatedFlags...)
	byID := map[int32]*clusterNode{}
	for _, n := range nodes {
		byID[n.id] = n
	}
	createReplicated(t, nodes[0], topic, 1, 3)
	waitFullISR(t, nodes[0], topic, 3)
	cl, err := kgo.NewClient(kgo.SeedBrokers(nodes[0].kafka), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 10 {
		if err := cl.ProduceSync(ctx, kgo.StringRecord(fmt.Sprint(i))).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	leaderSeenBy := func(n *clusterNode) int32 {
		var id int32 = -1
		waitFor(t, "a leader", func(ctx context.Context) (bool, string) {
			ps, err := n.partitions(ctx, topic)
			if err != nil {
				return false, err.Error()
			}
			id = ps[0].Leader
			return id >= 0, fmt.Sprint(ps[0])
		})
		return id
	}
	// Two leaders paused in turn with no write in between: the second led
	// an empty epoch.
	for round := range 2 {
		victim := byID[leaderSeenBy(nodes[0])]
		other := nodes[0]
		if other == victim {
			other = nodes[1]
		}
		victim.cmd.Process.Signal(syscall.SIGSTOP)
		waitFor(t, "a new leader", func(ctx context.Context) (bool, string) {
			ps, err := other.partitions(ctx, topic)
			if err != nil {
				return false, err.Error()
			}
			return ps[0].Leader >= 0 && ps[0].Leader != victim.id, fmt.Sprint(ps[0])
		})
		victim.cmd.Process.Signal(syscall.SIGCONT)
		t.Logf("round %d: paused leader %d until it was replaced", round, victim.id)
		waitFullISR(t, other, topic, 3)
	}
}
