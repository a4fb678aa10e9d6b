package broker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

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

// TestTransactionsCommitAndAbort: records of aborted transactions are
// invisible to read_committed consumers and visible to read_uncommitted
// ones; an open transaction holds read_committed consumers back.
func TestTransactionsCommitAndAbort(t *testing.T) {
	b := testbroker.Start(t)
	adm, _ := compatAdmin(t, b.Addr())
	const topic = "txn-basic"
	compatCreateTopic(t, adm, topic, 3, nil)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.TransactionalID("tx-basic"), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := compatCtx(t, 30*time.Second)
	txn := func(prefix string, n int, commit bool) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			cl.Produce(ctx, kgo.StringRecord(fmt.Sprintf("%s-%d", prefix, i)), func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce: %v", err)
				}
			})
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end transaction (commit %v): %v", commit, err)
		}
	}
	txn("c1", 50, true)
	txn("a1", 50, false)
	txn("c2", 50, true)
	txn("a2", 50, false)

	committed := consumeAll(t, b.Addr(), topic, true, 100, 10*time.Second)
	if len(committed) != 100 {
		t.Fatalf("read_committed consumer got %d records, want the 100 committed", len(committed))
	}
	for _, v := range committed {
		if v[0] != 'c' {
			t.Fatalf("read_committed consumer got %q, from an aborted transaction", v)
		}
	}
	if all := consumeAll(t, b.Addr(), topic, false, 200, 10*time.Second); len(all) != 200 {
		t.Fatalf("read_uncommitted consumer got %d records, want all 200", len(all))
	}

	// An open transaction: read_committed sees nothing of it until it commits.
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, kgo.StringRecord("open-0")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := consumeAll(t, b.Addr(), topic, true, 101, 2*time.Second); len(got) != 100 {
		t.Fatalf("read_committed consumer got %d records while a transaction was open, want 100", len(got))
	}
	// DescribeProducers shows the open transaction where it started (what
	// kafka-transactions.sh find-hanging looks for), and only there.
	open := openTxnStarts(t, adm, topic)
	if len(open) != 1 {
		t.Fatalf("open transactions by DescribeProducers: %v, want one partition", open)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if got := consumeAll(t, b.Addr(), topic, true, 101, 10*time.Second); len(got) != 101 {
		t.Fatalf("read_committed consumer got %d records after the commit, want 101", len(got))
	}
	if open := openTxnStarts(t, adm, topic); len(open) != 0 {
		t.Fatalf("open transactions after the commit: %v", open)
	}
}

// openTxnStarts maps partition → first offset of an open transaction, as
// DescribeProducers reports them.
func openTxnStarts(t *testing.T, adm *kadm.Client, topic string) map[int32]int64 {
	t.Helper()
	ds, err := adm.DescribeProducers(compatCtx(t, 10*time.Second), kadm.TopicsSet{topic: {0: {}, 1: {}, 2: {}}})
	if err != nil {
		t.Fatal(err)
	}
	open := map[int32]int64{}
	ds.EachProducer(func(p kadm.DescribedProducer) {
		if p.CurrentTxnStartOffset >= 0 {
			open[p.Partition] = p.CurrentTxnStartOffset
		}
	})
	return open
}
