package broker_test

import (
	"testing"

	"github.com/sluice-io/sluice/internal/suites"
	"github.com/sluice-io/sluice/internal/testbroker"
)

// TestGroupSarama is a smoke test of sarama's ConsumerGroup
// (suites.GroupSarama).
func TestGroupSarama(t *testing.T) {
	suites.GroupSarama(t, oneBroker(testbroker.Start(t)))
}
