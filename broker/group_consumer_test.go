package broker_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/suites"
	"github.com/sluice-io/sluice/internal/testbroker"
)

// Consumer-group acceptance tests with franz-go: several members share a
// 6-partition topic, every record is consumed, offsets are committed, and a
// new client of the same group (or the same group after a broker restart)
// resumes from the committed offsets.

const groupTestPartitions = 6

// groupProduce writes records from..to-1 of topic, values "topic-i",
// spread round-robin over the partitions (suites.Env.Produce).
func groupProduce(t *testing.T, addr, topic string, from, to int) {
	suites.Env{Seeds: []string{addr}}.Produce(t, topic, from, to)
}

// startGroupMember starts a franz-go member of group reading topic into
// seen (suites.Env.StartMember).
func startGroupMember(t *testing.T, addr, group, topic string, seen *suites.Seen, opts ...kgo.Opt) *suites.Member {
	return suites.Env{Seeds: []string{addr}}.StartMember(t, group, topic, seen, opts...)
}

// TestGroupBalancers runs suites.GroupBalancer with every balancer: the
// classic ones and KIP-848.
func TestGroupBalancers(t *testing.T) {
	env := oneBroker(testbroker.Start(t))
	for _, bal := range suites.Balancers() {
		t.Run(bal.Name, func(t *testing.T) { suites.GroupBalancer(t, env, bal) })
	}
}

// TestGroupBrokerRestart: suites.GroupRestart, whose Disrupt restarts the
// broker on the same data directory.
func TestGroupBrokerRestart(t *testing.T) {
	suites.GroupRestart(t, restartedBroker(t, testbroker.Config(t.TempDir())))
}
