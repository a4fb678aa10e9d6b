package broker_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/broker"
	"github.com/sluice-io/sluice/internal/suites"
	"github.com/sluice-io/sluice/internal/testbroker"
)

// txnProducer is a kgo transactional producer of topic, closed with the
// test.
func txnProducer(t *testing.T, addr, id, topic string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.TransactionalID(id), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RetryTimeout(5 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestTransactionZombieFenced: suites.TxnZombieFenced.
func TestTransactionZombieFenced(t *testing.T) {
	suites.TxnZombieFenced(t, oneBroker(testbroker.Start(t)))
}

// TestTransactionTimeoutAbortsAbandoned: a transaction whose producer
// vanished is aborted once transaction.timeout.ms passes; its records stay
// invisible to read_committed consumers, which are not held back, and the
// producer, should it come back, is fenced.
func TestTransactionTimeoutAbortsAbandoned(t *testing.T) {
	b := testbroker.Start(t, func(c *broker.Config) { c.TxnAbortCheckInterval = 100 * time.Millisecond })
	adm, _ := compatAdmin(t, b.Addr())
	const topic = "txn-timeout"
	compatCreateTopic(t, adm, topic, 2, nil)
	ctx := compatCtx(t, 60*time.Second)

	gone := txnProducer(t, b.Addr(), "abandoned", topic, kgo.TransactionTimeout(2*time.Second))
	if err := gone.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		if err := gone.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("abandoned")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	begun := time.Now()
	if lso := suites.LastStableOffsets(t, adm, topic); lso[0] != 0 || lso[1] != 0 {
		t.Fatalf("last stable offsets %v while the transaction is open, want 0", lso)
	}
	// The producer is silent from here on.
	suites.WaitStable(t, adm, topic, 15*time.Second)
	if d := time.Since(begun); d < 1500*time.Millisecond {
		t.Fatalf("the transaction ended %v after its records, before its 2s timeout", d)
	}
	if got := oneBroker(b).ConsumeAll(t, topic, true, 1, 2*time.Second); len(got) != 0 {
		t.Fatalf("read_committed consumer got %q from an aborted transaction", got)
	}
	if got := oneBroker(b).ConsumeAll(t, topic, false, 2, 5*time.Second); len(got) != 2 {
		t.Fatalf("read_uncommitted consumer got %q, want the two aborted records", got)
	}
	if err := gone.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("the producer committed a transaction the broker aborted")
	} else {
		t.Logf("late commit: %v", err)
	}

	// The transactional id works again for a new producer.
	next := txnProducer(t, b.Addr(), "abandoned", topic)
	if err := next.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := next.ProduceSync(ctx, &kgo.Record{Partition: 1, Value: []byte("committed")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := next.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if got := oneBroker(b).ConsumeAll(t, topic, true, 2, 5*time.Second); len(got) != 1 || got[0] != "committed" {
		t.Fatalf("read_committed consumer got %q, want [committed]", got)
	}
}

// TestTransactionOpenAcrossRestart: suites.TxnOpenAcrossRestart, whose
// Disrupt restarts the broker while the transaction is open.
func TestTransactionOpenAcrossRestart(t *testing.T) {
	cfg := testbroker.Config(t.TempDir())
	cfg.TxnAbortCheckInterval = 100 * time.Millisecond
	suites.TxnOpenAcrossRestart(t, restartedBroker(t, cfg))
}

// TestTxnOffsetCommitSurvivesRestart: suites.TxnOffsetCommitRestart, whose
// Disrupt restarts the broker.
func TestTxnOffsetCommitSurvivesRestart(t *testing.T) {
	suites.TxnOffsetCommitRestart(t, restartedBroker(t, testbroker.Config(t.TempDir())))
}

// TestAbortedTransactionsSurviveRestart: with small segments, so aborted
// transactions sit in rolled segments' .txnindex files and in the active
// one, read_committed consumers skip exactly the aborted records after a
// restart, twice (the second start reads what the first rewrote).
func TestAbortedTransactionsSurviveRestart(t *testing.T) {
	cfg := testbroker.Config(t.TempDir())
	b := testbroker.StartConfig(t, cfg)
	adm, _ := compatAdmin(t, b.Addr())
	const topic = "txn-aborted-restart"
	segment := "2048"
	compatCreateTopic(t, adm, topic, 1, map[string]*string{"segment.bytes": &segment})
	ctx := compatCtx(t, 60*time.Second)
	cl := txnProducer(t, b.Addr(), "aborted-restart", topic)
	want := 0
	for i := range 30 {
		commit := i%3 != 1
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for j := range 5 {
			v := fmt.Sprintf("t%02d-%d-%v-%s", i, j, commit, strings.Repeat("x", 40))
			if err := cl.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
		if commit {
			want += 5
		}
	}
	check := func(when string) {
		t.Helper()
		got := oneBroker(b).ConsumeAll(t, topic, true, want+1, 1500*time.Millisecond)
		if len(got) != want {
			t.Fatalf("%s: read_committed consumer got %d records, want %d", when, len(got), want)
		}
		for _, v := range got {
			if strings.Contains(v, "-false-") {
				t.Fatalf("%s: read_committed consumer got %q, of an aborted transaction", when, v)
			}
		}
	}
	check("before the restart")
	b = testbroker.Restart(t, b, cfg)
	check("after a restart")
	b = testbroker.Restart(t, b, cfg)
	check("after a second restart")
}

// TestDescribeAndListTransactions: suites.TxnDescribeAndList.
func TestDescribeAndListTransactions(t *testing.T) {
	suites.TxnDescribeAndList(t, oneBroker(testbroker.Start(t)))
}
