package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/suites"
	"github.com/sluice-io/sluice/internal/testbroker"
)

// consumeAll reads topic from the start until n records came or the
// deadline passed, with the given isolation level.
func consumeAll(t *testing.T, addr, topic string, committed bool, n int, wait time.Duration) []string {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100 * time.Millisecond)}
	if committed {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var got []string
	for len(got) < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

// TestTransactionsCommitAndAbort: suites.TxnCommitAndAbort.
func TestTransactionsCommitAndAbort(t *testing.T) {
	suites.TxnCommitAndAbort(t, oneBroker(testbroker.Start(t)))
}
