package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/suites"
)

// The consumer-group and transaction scenarios of the earlier issues
// (internal/suites, which the broker package runs against one in-process
// broker) on three `sluice serve` processes: RF 3, min.insync.replicas 2,
// replicated __consumer_offsets and __transaction_state. At each
// scenario's midpoint the node that coordinates its group or
// transactional id is SIGKILLed, another takes over, and it is started
// again.
//
// Each scenario gets a cluster of its own, so that it sees exactly one
// kill. They could share one, but after a few kills on one cluster
// (partitions changing leaders at epochs with no record written) some
// restarted replicas never rejoined the ISR: the bug
// TestFollowerRejoinsAfterEmptyEpoch reproduces. The next kill then left
// their partitions below min.insync.replicas and every later scenario
// failed. One kill per cluster keeps that bug from turning into unrelated
// failures, and a cluster starts in under a second.

// suiteFlags are coordinatorFlags with testbroker's KIP-848 timers: members
// hear of new assignments at their next heartbeat, every 200 ms.
var suiteFlags = append(append([]string{}, coordinatorFlags...),
	"--set", "group.consumer.heartbeat.interval.ms=200", "--set", "group.consumer.session.timeout.ms=6000")

type suiteCluster struct {
	nodes []*clusterNode
	byID  map[int32]*clusterNode
	seeds []string
}

func startSuiteCluster(t *testing.T) *suiteCluster {
	c := &suiteCluster{nodes: startCluster(t, 3, suiteFlags...), byID: map[int32]*clusterNode{}}
	for _, n := range c.nodes {
		c.byID[n.id] = n
		c.seeds = append(c.seeds, n.kafka)
	}
	waitFor(t, "three brokers registered", func(ctx context.Context) (bool, string) {
		m, err := c.nodes[0].metadata(ctx)
		if err != nil {
			return false, err.Error()
		}
		return len(m.Brokers) == 3 && m.ControllerID > 0, fmt.Sprintf("%d brokers, controller %d", len(m.Brokers), m.ControllerID)
	})
	return c
}

func (c *suiteCluster) env() suites.Env {
	return suites.Env{
		Seeds:   c.seeds,
		Disrupt: c.killCoordinator,
		// Clients refresh metadata soon after a leader moves.
		Opts: []kgo.Opt{kgo.MetadataMinAge(200 * time.Millisecond)},
	}
}

// killCoordinator SIGKILLs the node coordinating key, waits until another
// node is named its coordinator, starts the killed node again and waits
// until every partition (the internal topics' too) has its three replicas
// in sync. Clients running meanwhile (group members, transform workers)
// live through the failover; the scenario's next request finds the
// coordinator moved and its old connection dead.
func (c *suiteCluster) killCoordinator(t *testing.T, typ int8, key string) {
	t.Helper()
	c.kill(t, typ, key, 3)
}

// kill is killCoordinator, waiting for isr in-sync replicas of every
// partition.
func (c *suiteCluster) kill(t *testing.T, typ int8, key string, isr int) {
	t.Helper()
	coord := c.byID[coordinatorNode(t, c.nodes[0], typ, key)]
	survivor := c.nodes[0]
	if survivor == coord {
		survivor = c.nodes[1]
	}
	begin := time.Now()
	coord.kill()
	var moved int32
	waitFor(t, fmt.Sprintf("a new coordinator for %q", key), func(context.Context) (bool, string) {
		moved = coordinatorNode(t, survivor, typ, key)
		return moved != coord.id, fmt.Sprintf("node %d", moved)
	})
	failover := time.Since(begin)
	coord.start()
	waitFor(t, fmt.Sprintf("every partition with %d in-sync replicas", isr), func(ctx context.Context) (bool, string) {
		return allInSync(ctx, survivor, isr)
	})
	t.Logf("killed node %d, coordinator of %q; node %d took over after %s; node %d back in sync after %s",
		coord.id, key, moved, failover.Round(time.Millisecond), coord.id, time.Since(begin).Round(time.Millisecond))
}

// allInSync reports whether node n's Metadata shows every partition of
// every topic led and with at least isr replicas in sync.
func allInSync(ctx context.Context, n *clusterNode, isr int) (bool, string) {
	m, err := n.metadata(ctx)
	if err != nil {
		return false, err.Error()
	}
	for _, tp := range m.Topics {
		for _, p := range tp.Partitions {
			if p.Leader < 0 || len(p.ISR) < isr {
				return false, fmt.Sprintf("%s/%d leader %d isr %v", *tp.Topic, p.Partition, p.Leader, p.ISR)
			}
		}
	}
	return true, ""
}

// TestEarlierSuitesOnCluster runs the group and transaction scenarios,
// each on its own three-node cluster, killing its coordinator once.
func TestEarlierSuitesOnCluster(t *testing.T) {
	run := func(name string, scenario func(*testing.T, suites.Env)) {
		t.Run(name, func(t *testing.T) {
			begin := time.Now()
			env := startSuiteCluster(t).env()
			t.Logf("cluster up in %s", time.Since(begin).Round(time.Millisecond))
			scenario(t, env)
		})
	}
	for _, bal := range suites.Balancers() {
		run("GroupBalancer/"+bal.Name, func(t *testing.T, env suites.Env) { suites.GroupBalancer(t, env, bal) })
	}
	run("GroupRestart", suites.GroupRestart)
	run("GroupKIP848Restart", suites.GroupKIP848Restart)
	run("GroupSarama", suites.GroupSarama)
	run("TxnCommitAndAbort", suites.TxnCommitAndAbort)
	run("TxnZombieFenced", suites.TxnZombieFenced)
	run("TxnOpenAcrossRestart", suites.TxnOpenAcrossRestart)
	run("TxnOffsetCommitRestart", suites.TxnOffsetCommitRestart)
	run("TxnDescribeAndList", suites.TxnDescribeAndList)
}

// TestExactlyOnceTransformOnCluster is TestExactlyOnceTransformThroughCrashes
// on three nodes (topics RF 3): the group's coordinator is SIGKILLed and
// restarted at 15% of the input committed, a worker vanishes mid-transaction
// at 40%, and the transaction coordinator of worker 0 is SIGKILLed and
// restarted at 65%. The read_committed output must hold every input record
// exactly once, in order.
func TestExactlyOnceTransformOnCluster(t *testing.T) {
	c := startSuiteCluster(t)
	r := eosRun{seeds: c.seeds, in: "eosc-in", out: "eosc-out", group: "eosc-transform", total: 20_000, rf: 3}
	r.crash1 = eosEvent{"SIGKILL and restart the group coordinator", func() {
		c.killCoordinator(t, suites.GroupCoordinator, r.group)
	}}
	r.crash2 = eosEvent{"SIGKILL and restart the transaction coordinator of " + r.workerID(0), func() {
		c.kill(t, suites.TxnCoordinator, r.workerID(0), 3)
	}}
	eosTransform(t, r)
}
