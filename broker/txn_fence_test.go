package broker_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/broker"
	"github.com/sluice-io/sluice/internal/testbroker"
)

// fencedErr reports whether err is how a broker tells a producer a newer
// one with its transactional id took over (or that its epoch is gone).
func fencedErr(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.InvalidProducerIDMapping)
}

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

// lastStableOffsets lists the read_committed end offsets of topic.
func lastStableOffsets(t *testing.T, adm *kadm.Client, topic string) map[int32]int64 {
	t.Helper()
	lo, err := adm.ListCommittedOffsets(compatCtx(t, 10*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// waitStable waits until the last stable offset of every partition of
// topic reaches its high watermark: no transaction is open in it.
func waitStable(t *testing.T, adm *kadm.Client, topic string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ends, err := adm.ListEndOffsets(compatCtx(t, 10*time.Second), topic)
		if err != nil {
			t.Fatal(err)
		}
		lso := lastStableOffsets(t, adm, topic)
		stable := true
		ends.Each(func(o kadm.ListedOffset) {
			if lso[o.Partition] != o.Offset {
				stable = false
			}
		})
		if stable {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: last stable offsets %v still behind the high watermarks %v after %v: an open transaction was never ended",
				topic, lso, ends, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTransactionZombieFenced: a second producer with the same
// transactional id fences the first, whose open transaction is aborted;
// every later produce, commit or new transaction of the first fails with
// a fencing error and none of its records become visible to read_committed
// consumers.
func TestTransactionZombieFenced(t *testing.T) {
	b := testbroker.Start(t)
	adm, _ := compatAdmin(t, b.Addr())
	const topic = "txn-zombie"
	compatCreateTopic(t, adm, topic, 2, nil)
	ctx := compatCtx(t, 60*time.Second)
	rec := func(v string, p int32) *kgo.Record { return &kgo.Record{Value: []byte(v), Partition: p} }

	old := txnProducer(t, b.Addr(), "zombie", topic)
	if err := old.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := old.ProduceSync(ctx, rec("old-open-0", 0), rec("old-open-1", 1)).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// The new producer's InitProducerId bumps the epoch and aborts the
	// open transaction.
	cur := txnProducer(t, b.Addr(), "zombie", topic)
	if err := cur.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cur.ProduceSync(ctx, rec("new-0", 0), rec("new-1", 1)).FirstErr(); err != nil {
		t.Fatalf("the new producer: %v", err)
	}

	// The zombie writes on in its transaction: refused.
	err := old.ProduceSync(ctx, rec("old-late-0", 0), rec("old-late-1", 1)).FirstErr()
	if !fencedErr(err) {
		t.Fatalf("a produce of the fenced producer: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
	}
	if err := old.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("the fenced producer committed its transaction")
	} else {
		t.Logf("zombie's commit: %v", err)
	}
	// And a fresh transaction of the zombie fails too.
	if err := old.BeginTransaction(); err == nil {
		if err := old.ProduceSync(ctx, rec("old-next-0", 0)).FirstErr(); err == nil {
			if err := old.EndTransaction(ctx, kgo.TryCommit); err == nil {
				t.Fatal("the fenced producer committed a new transaction")
			}
		}
	}

	if err := cur.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("the new producer's commit: %v", err)
	}
	waitStable(t, adm, topic, 10*time.Second)
	got := consumeAll(t, b.Addr(), topic, true, 3, 3*time.Second)
	if len(got) != 2 || !strings.HasPrefix(got[0], "new-") || !strings.HasPrefix(got[1], "new-") {
		t.Fatalf("read_committed consumer got %q, want the new producer's two records only", got)
	}
	all := consumeAll(t, b.Addr(), topic, false, 10, 3*time.Second)
	for _, v := range all {
		if strings.HasPrefix(v, "old-late") || strings.HasPrefix(v, "old-next") {
			t.Fatalf("the fenced producer's write %q reached the log", v)
		}
	}
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
	if lso := lastStableOffsets(t, adm, topic); lso[0] != 0 || lso[1] != 0 {
		t.Fatalf("last stable offsets %v while the transaction is open, want 0", lso)
	}
	// The producer is silent from here on.
	waitStable(t, adm, topic, 15*time.Second)
	if d := time.Since(begun); d < 1500*time.Millisecond {
		t.Fatalf("the transaction ended %v after its records, before its 2s timeout", d)
	}
	if got := consumeAll(t, b.Addr(), topic, true, 1, 2*time.Second); len(got) != 0 {
		t.Fatalf("read_committed consumer got %q from an aborted transaction", got)
	}
	if got := consumeAll(t, b.Addr(), topic, false, 2, 5*time.Second); len(got) != 2 {
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
	if got := consumeAll(t, b.Addr(), topic, true, 2, 5*time.Second); len(got) != 1 || got[0] != "committed" {
		t.Fatalf("read_committed consumer got %q, want [committed]", got)
	}
}

// TestTransactionOpenAcrossRestart: a transaction open when the broker
// restarts is aborted by its timeout afterwards (its start survives in
// __transaction_state), read_committed consumers get past it, and a
// transaction committed after the restart is visible.
func TestTransactionOpenAcrossRestart(t *testing.T) {
	cfg := testbroker.Config(t.TempDir())
	cfg.TxnAbortCheckInterval = 100 * time.Millisecond
	b := testbroker.StartConfig(t, cfg)
	adm, admCl := compatAdmin(t, b.Addr())
	const topic = "txn-restart"
	compatCreateTopic(t, adm, topic, 2, nil)
	ctx := compatCtx(t, 60*time.Second)

	open := txnProducer(t, b.Addr(), "restart-open", topic, kgo.TransactionTimeout(3*time.Second))
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := open.ProduceSync(ctx, &kgo.Record{Partition: int32(i % 2), Value: fmt.Appendf(nil, "open-%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	b = testbroker.Restart(t, b, cfg)
	admCl.ForceMetadataRefresh()

	// Before the timeout the transaction holds read_committed back...
	if lso := lastStableOffsets(t, adm, topic); lso[0] != 0 || lso[1] != 0 {
		t.Logf("last stable offsets %v right after the restart", lso)
	}
	// ...and after it, no more.
	waitStable(t, adm, topic, 15*time.Second)
	if got := consumeAll(t, b.Addr(), topic, true, 1, 2*time.Second); len(got) != 0 {
		t.Fatalf("read_committed consumer got %q from the transaction open across the restart", got)
	}

	next := txnProducer(t, b.Addr(), "restart-next", topic)
	if err := next.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := next.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("after-0")}, &kgo.Record{Partition: 1, Value: []byte("after-1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := next.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	got := consumeAll(t, b.Addr(), topic, true, 3, 5*time.Second)
	if len(got) != 2 || !strings.HasPrefix(got[0], "after-") || !strings.HasPrefix(got[1], "after-") {
		t.Fatalf("read_committed consumer got %q, want the two records committed after the restart", got)
	}
}

// TestTxnOffsetCommitSurvivesRestart: offsets a GroupTransactSession
// commits in its transaction are the group's committed offsets after a
// broker restart.
func TestTxnOffsetCommitSurvivesRestart(t *testing.T) {
	cfg := testbroker.Config(t.TempDir())
	b := testbroker.StartConfig(t, cfg)
	adm, _ := compatAdmin(t, b.Addr())
	const in, out, group = "txoc-in", "txoc-out", "txoc-group"
	compatCreateTopic(t, adm, in, 2, nil)
	compatCreateTopic(t, adm, out, 2, nil)
	ctx := compatCtx(t, 60*time.Second)
	prod, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	const perPartition = 50
	for i := range 2 * perPartition {
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: in, Partition: int32(i % 2), Value: fmt.Appendf(nil, "in-%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(b.Addr()), kgo.TransactionalID("txoc"),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(in), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	for done := 0; done < 2*perPartition; {
		fs := sess.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d", done, 2*perPartition)
		}
		if fs.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			sess.Produce(ctx, &kgo.Record{Topic: out, Partition: r.Partition, Value: r.Value}, nil)
		})
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil || !committed {
			t.Fatalf("end transaction: committed %v, %v", committed, err)
		}
		done += fs.NumRecords()
	}
	sess.Close()

	want := func(b *broker.Broker, when string) {
		t.Helper()
		adm, _ := compatAdmin(t, b.Addr())
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		for p := int32(0); p < 2; p++ {
			o, ok := offs.Lookup(in, p)
			if !ok || o.Err != nil || o.At != perPartition {
				t.Fatalf("%s: committed offset of %s/%d: %+v (found %v), want %d", when, in, p, o, ok, perPartition)
			}
		}
	}
	want(b, "before the restart")
	b = testbroker.Restart(t, b, cfg)
	want(b, "after the restart")
	if got := consumeAll(t, b.Addr(), out, true, 2*perPartition+1, 5*time.Second); len(got) != 2*perPartition {
		t.Fatalf("read_committed consumer of the output got %d records, want %d", len(got), 2*perPartition)
	}
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
		got := consumeAll(t, b.Addr(), topic, true, want+1, 1500*time.Millisecond)
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

// TestDescribeAndListTransactions: an open transaction is Ongoing with its
// partitions, producer and start time; after the commit it is
// CompleteCommit with none; ListTransactions filters by state and producer.
func TestDescribeAndListTransactions(t *testing.T) {
	b := testbroker.Start(t)
	adm, _ := compatAdmin(t, b.Addr())
	const topic = "txn-describe"
	compatCreateTopic(t, adm, topic, 2, nil)
	ctx := compatCtx(t, 30*time.Second)
	cl := txnProducer(t, b.Addr(), "described", topic, kgo.TransactionTimeout(30*time.Second))
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	before := time.Now().UnixMilli()
	if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 1, Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	describe := func() kadm.DescribedTransaction {
		t.Helper()
		ds, err := adm.DescribeTransactions(ctx, "described")
		if err != nil {
			t.Fatal(err)
		}
		d, ok := ds["described"]
		if !ok || d.Err != nil {
			t.Fatalf("describe: %+v (found %v)", d, ok)
		}
		return d
	}
	d := describe()
	if d.State != "Ongoing" || d.TimeoutMillis != 30_000 || d.ProducerID < 0 || d.StartTimestamp < before-1000 ||
		!slices.Equal(d.Topics.Sorted()[0].Partitions, []int32{1}) || len(d.Topics) != 1 {
		t.Fatalf("open transaction described as %+v (topics %v)", d, d.Topics.Sorted())
	}
	list, err := adm.ListTransactions(ctx, nil, []string{"Ongoing"})
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := list["described"]; !ok || l.ProducerID != d.ProducerID || l.State != "Ongoing" {
		t.Fatalf("ListTransactions(Ongoing) = %+v", list)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if d := describe(); d.State != "CompleteCommit" || len(d.Topics) != 0 {
		t.Fatalf("committed transaction described as %+v", d)
	}
	if list, err := adm.ListTransactions(ctx, nil, []string{"Ongoing"}); err != nil || len(list) != 0 {
		t.Fatalf("ListTransactions(Ongoing) after the commit = %+v, %v", list, err)
	}
	if list, err := adm.ListTransactions(ctx, []int64{d.ProducerID}, nil); err != nil || len(list) != 1 {
		t.Fatalf("ListTransactions(producer %d) = %+v, %v", d.ProducerID, list, err)
	}
}
