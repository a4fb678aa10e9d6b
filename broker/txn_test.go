package broker_test

import (
	"testing"

	"github.com/sluice-io/sluice/internal/suites"
	"github.com/sluice-io/sluice/internal/testbroker"
)

// TestTransactionsCommitAndAbort: suites.TxnCommitAndAbort.
func TestTransactionsCommitAndAbort(t *testing.T) {
	suites.TxnCommitAndAbort(t, oneBroker(testbroker.Start(t)))
}
