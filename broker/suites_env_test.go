package broker_test

import (
	"testing"

	"github.com/sluice-io/sluice/broker"
	"github.com/sluice-io/sluice/internal/suites"
	"github.com/sluice-io/sluice/internal/testbroker"
)

// The group and transaction scenarios of internal/suites run here against
// one in-process broker, and in internal/e2e against a three-node cluster
// whose coordinator is killed at each scenario's midpoint.

// oneBroker runs a scenario on b; its Disrupt does nothing.
func oneBroker(b *broker.Broker) suites.Env {
	return suites.Env{Seeds: []string{b.Addr()}}
}

// restartedBroker runs a scenario on a broker with cfg; its Disrupt
// closes the broker and starts it again on the same data directory and
// address, as a process restart would.
func restartedBroker(t *testing.T, cfg broker.Config) suites.Env {
	b := testbroker.StartConfig(t, cfg)
	return suites.Env{
		Seeds:   []string{b.Addr()},
		Disrupt: func(t *testing.T, _ int8, _ string) { b = testbroker.Restart(t, b, cfg) },
	}
}
