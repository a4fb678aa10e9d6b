package suites

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
)

// Transaction scenarios with franz-go: commit and abort under
// read_committed, fencing of a zombie producer, the timeout of a
// transaction open across the disruption, offsets committed in
// transactions, and DescribeTransactions/ListTransactions.

// fencedErr reports whether err is how a broker tells a producer a newer
// one with its transactional id took over (or that its epoch is gone).
func fencedErr(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.InvalidProducerIDMapping)
}

// txnProducer is a kgo transactional producer of topic, closed with the
// test.
func (e Env) txnProducer(t *testing.T, id, topic string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return e.client(t, append([]kgo.Opt{kgo.TransactionalID(id), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RetryTimeout(5 * time.Second)}, opts...)...)
}

// LastStableOffsets lists the read_committed end offsets of topic.
func LastStableOffsets(t *testing.T, adm *kadm.Client, topic string) map[int32]int64 {
	t.Helper()
	lo, err := adm.ListCommittedOffsets(Ctx(t, 10*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// WaitStable waits until the last stable offset of every partition of
// topic reaches its high watermark: no transaction is open in it.
func WaitStable(t *testing.T, adm *kadm.Client, topic string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ends, err := adm.ListEndOffsets(Ctx(t, 10*time.Second), topic)
		if err != nil {
			t.Fatal(err)
		}
		lso := LastStableOffsets(t, adm, topic)
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

// openTxnStarts maps partition → first offset of an open transaction, as
// DescribeProducers reports them.
func openTxnStarts(t *testing.T, adm *kadm.Client, topic string) map[int32]int64 {
	t.Helper()
	ds, err := adm.DescribeProducers(Ctx(t, 10*time.Second), kadm.TopicsSet{topic: {0: {}, 1: {}, 2: {}}})
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

// TxnCommitAndAbort: records of aborted transactions are invisible to
// read_committed consumers and visible to read_uncommitted ones; an open
// transaction holds read_committed consumers back. Disrupt hits the
// transaction coordinator while the third transaction is open, its
// records written and its commit not yet sent: the coordinator after it
// must still know the transaction's partitions to commit it.
func TxnCommitAndAbort(t *testing.T, env Env) {
	adm, _ := env.admin(t)
	const topic = "txn-basic"
	createTopic(t, adm, topic, 3, nil)
	cl := env.client(t, kgo.TransactionalID("tx-basic"), kgo.DefaultProduceTopic(topic))
	ctx := Ctx(t, 60*time.Second)
	txn := func(prefix string, n int, commit bool, beforeEnd func()) {
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
		beforeEnd()
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end transaction (commit %v): %v", commit, err)
		}
	}
	nothing := func() {}
	txn("c1", 50, true, nothing)
	txn("a1", 50, false, nothing)
	txn("c2", 50, true, func() { env.disrupt(t, TxnCoordinator, "tx-basic") })
	txn("a2", 50, false, nothing)

	committed := env.ConsumeAll(t, topic, true, 100, 10*time.Second)
	if len(committed) != 100 {
		t.Fatalf("read_committed consumer got %d records, want the 100 committed", len(committed))
	}
	for _, v := range committed {
		if v[0] != 'c' {
			t.Fatalf("read_committed consumer got %q, from an aborted transaction", v)
		}
	}
	if all := env.ConsumeAll(t, topic, false, 200, 10*time.Second); len(all) != 200 {
		t.Fatalf("read_uncommitted consumer got %d records, want all 200", len(all))
	}

	// An open transaction: read_committed sees nothing of it until it commits.
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, kgo.StringRecord("open-0")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := env.ConsumeAll(t, topic, true, 101, 2*time.Second); len(got) != 100 {
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
	if got := env.ConsumeAll(t, topic, true, 101, 10*time.Second); len(got) != 101 {
		t.Fatalf("read_committed consumer got %d records after the commit, want 101", len(got))
	}
	if open := openTxnStarts(t, adm, topic); len(open) != 0 {
		t.Fatalf("open transactions after the commit: %v", open)
	}
}

// TxnZombieFenced: a second producer with the same transactional id
// fences the first, whose open transaction is aborted; Disrupt hits the
// transaction coordinator while the second producer's transaction is
// open; every later produce, commit or new transaction of the first fails
// with a fencing error, none of its records become visible to
// read_committed consumers, and the second producer commits.
func TxnZombieFenced(t *testing.T, env Env) {
	adm, _ := env.admin(t)
	const topic = "txn-zombie"
	createTopic(t, adm, topic, 2, nil)
	ctx := Ctx(t, 60*time.Second)
	rec := func(v string, p int32) *kgo.Record { return &kgo.Record{Value: []byte(v), Partition: p} }

	old := env.txnProducer(t, "zombie", topic)
	if err := old.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := old.ProduceSync(ctx, rec("old-open-0", 0), rec("old-open-1", 1)).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// The new producer's InitProducerId bumps the epoch and aborts the
	// open transaction.
	cur := env.txnProducer(t, "zombie", topic)
	if err := cur.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cur.ProduceSync(ctx, rec("new-0", 0), rec("new-1", 1)).FirstErr(); err != nil {
		t.Fatalf("the new producer: %v", err)
	}
	env.disrupt(t, TxnCoordinator, "zombie")

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
	WaitStable(t, adm, topic, 10*time.Second)
	got := env.ConsumeAll(t, topic, true, 3, 3*time.Second)
	if len(got) != 2 || !strings.HasPrefix(got[0], "new-") || !strings.HasPrefix(got[1], "new-") {
		t.Fatalf("read_committed consumer got %q, want the new producer's two records only", got)
	}
	all := env.ConsumeAll(t, topic, false, 10, 3*time.Second)
	for _, v := range all {
		if strings.HasPrefix(v, "old-late") || strings.HasPrefix(v, "old-next") {
			t.Fatalf("the fenced producer's write %q reached the log", v)
		}
	}
}

// TxnOpenAcrossRestart: a transaction open when Disrupt hits its
// coordinator is aborted by its timeout afterwards (its start survives in
// __transaction_state), read_committed consumers get past it, and a
// transaction committed afterwards is visible. The brokers must check for
// timed-out transactions often (every 100 ms to 1 s).
func TxnOpenAcrossRestart(t *testing.T, env Env) {
	adm, admCl := env.admin(t)
	const topic = "txn-restart"
	createTopic(t, adm, topic, 2, nil)
	ctx := Ctx(t, 60*time.Second)

	open := env.txnProducer(t, "restart-open", topic, kgo.TransactionTimeout(3*time.Second))
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := open.ProduceSync(ctx, &kgo.Record{Partition: int32(i % 2), Value: fmt.Appendf(nil, "open-%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	env.disrupt(t, TxnCoordinator, "restart-open")
	admCl.ForceMetadataRefresh()

	// Before the timeout the transaction holds read_committed back...
	if lso := LastStableOffsets(t, adm, topic); lso[0] != 0 || lso[1] != 0 {
		t.Logf("last stable offsets %v right after the restart", lso)
	}
	// ...and after it, no more.
	WaitStable(t, adm, topic, 15*time.Second)
	if got := env.ConsumeAll(t, topic, true, 1, 2*time.Second); len(got) != 0 {
		t.Fatalf("read_committed consumer got %q from the transaction open across the restart", got)
	}

	next := env.txnProducer(t, "restart-next", topic)
	if err := next.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := next.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("after-0")}, &kgo.Record{Partition: 1, Value: []byte("after-1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := next.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	got := env.ConsumeAll(t, topic, true, 3, 5*time.Second)
	if len(got) != 2 || !strings.HasPrefix(got[0], "after-") || !strings.HasPrefix(got[1], "after-") {
		t.Fatalf("read_committed consumer got %q, want the two records committed after the restart", got)
	}
}

// TxnOffsetCommitRestart: offsets a GroupTransactSession commits in its
// transactions are the group's committed offsets, before and after Disrupt
// hits the group's coordinator.
func TxnOffsetCommitRestart(t *testing.T, env Env) {
	adm, _ := env.admin(t)
	const in, out, group = "txoc-in", "txoc-out", "txoc-group"
	createTopic(t, adm, in, 2, nil)
	createTopic(t, adm, out, 2, nil)
	ctx := Ctx(t, 60*time.Second)
	prod := env.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	const perPartition = 50
	for i := range 2 * perPartition {
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: in, Partition: int32(i % 2), Value: fmt.Appendf(nil, "in-%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	opts := append([]kgo.Opt{kgo.SeedBrokers(env.Seeds...)}, env.Opts...)
	sess, err := kgo.NewGroupTransactSession(append(opts, kgo.TransactionalID("txoc"),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(in), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
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

	want := func(when string) {
		t.Helper()
		adm, _ := env.admin(t)
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
	want("before the restart")
	env.disrupt(t, GroupCoordinator, group)
	want("after the restart")
	if got := env.ConsumeAll(t, out, true, 2*perPartition+1, 5*time.Second); len(got) != 2*perPartition {
		t.Fatalf("read_committed consumer of the output got %d records, want %d", len(got), 2*perPartition)
	}
}

// TxnDescribeAndList: an open transaction is Ongoing with its partitions,
// producer and start time, and stays so after Disrupt hits its
// coordinator; after the commit it is CompleteCommit with none;
// ListTransactions filters by state and producer.
func TxnDescribeAndList(t *testing.T, env Env) {
	adm, _ := env.admin(t)
	const topic = "txn-describe"
	createTopic(t, adm, topic, 2, nil)
	ctx := Ctx(t, 30*time.Second)
	cl := env.txnProducer(t, "described", topic, kgo.TransactionTimeout(30*time.Second))
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
	checkOngoing := func(d kadm.DescribedTransaction) {
		t.Helper()
		if d.State != "Ongoing" || d.TimeoutMillis != 30_000 || d.ProducerID < 0 || d.StartTimestamp < before-1000 ||
			!slices.Equal(d.Topics.Sorted()[0].Partitions, []int32{1}) || len(d.Topics) != 1 {
			t.Fatalf("open transaction described as %+v (topics %v)", d, d.Topics.Sorted())
		}
	}
	d := describe()
	checkOngoing(d)
	env.disrupt(t, TxnCoordinator, "described")
	d2 := describe()
	checkOngoing(d2)
	if d2.ProducerID != d.ProducerID || d2.ProducerEpoch != d.ProducerEpoch || d2.StartTimestamp != d.StartTimestamp {
		t.Fatalf("open transaction described as %+v before the disruption, %+v after", d, d2)
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
