package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/testnet"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestExactlyOnceTransformThroughCrashes is issue 4's acceptance test:
// franz-go GroupTransactSession workers copy an input topic to an output
// topic in transactions (record of input partition p, offset o goes to
// output partition p as "p:o:<input value>"), while the broker is
// SIGKILLed and restarted twice and one worker vanishes in the middle of a
// transaction (its connections cut, no EndTxn, no LeaveGroup) and is
// replaced by a new client with the same transactional id.
//
// A read_committed consumer of the output must then find, in every
// partition p, exactly input offsets 0, 1, 2, ... of input partition p, in
// that order: each input record exactly once, and per-partition order
// kept. That order holds because a partition is owned by one worker at a
// time, its output goes to one output partition, and a new owner starts
// from the offsets the previous owner committed in its last committed
// transaction (fetched with require_stable).
func TestExactlyOnceTransformThroughCrashes(t *testing.T) {
	n := newNode(t, "--set", "offsets.topic.num.partitions=4", "--set", "transaction.state.log.num.partitions=4",
		"--set", "group.initial.rebalance.delay.ms=0",
		"--set", "transaction.abort.timed.out.transaction.cleanup.interval.ms=500")
	n.start()
	restart := eosEvent{"SIGKILL and restart the broker", func() { n.kill(); n.start() }}
	eosTransform(t, eosRun{seeds: []string{n.kafka}, in: "eos-in", out: "eos-out", group: "eos-transform",
		total: 100_000, rf: 1, crash1: restart, crash2: restart})
}

// eosEvent is a crash eosTransform causes at a point of its progress.
type eosEvent struct {
	name string
	do   func()
}

// eosRun describes one exactly-once transform run: the brokers, the
// topics and group, how many input records, the replication factor of
// the topics, and the two crashes (at 15% and 65% of the input committed;
// the worker vanishes at 40%).
type eosRun struct {
	seeds          []string
	in, out, group string
	total          int
	rf             int16
	crash1, crash2 eosEvent
}

// workerID is the transactional id of worker i.
func (r eosRun) workerID(i int) string { return fmt.Sprintf("%s-%d", r.group, i) }

// eosTransform runs three transform workers over 6 partitions through
// the run's crashes and a worker vanishing mid-transaction, then checks
// the output holds each input record exactly once, in order.
func eosTransform(t *testing.T, r eosRun) {
	const (
		partitions = 6
		workers    = 3
	)
	in, out, group, total := r.in, r.out, r.group, int64(r.total)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	adm := kadm.NewClient(mustClient(t, r.seeds...))
	for _, topic := range []string{in, out} {
		resp, err := adm.CreateTopic(ctx, partitions, r.rf, nil, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	want := eosProduceInput(t, ctx, r.seeds, in, partitions, r.total)

	var stats eosStats
	var wg sync.WaitGroup
	runCtx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	// The first worker to reach the middle of a transaction once kill is
	// closed vanishes and reports itself on vanished.
	kill, vanished := make(chan struct{}), make(chan *transformer, 1)
	var claimed atomic.Bool
	start := func(id string) {
		w := &transformer{t: t, seeds: r.seeds, txnID: id, group: group, in: in, out: out,
			dial: &testnet.CutDialer{}, kill: kill, claimed: &claimed, vanished: vanished, stats: &stats, closers: &wg}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(runCtx)
		}()
	}
	for i := range workers {
		start(r.workerID(i))
	}

	// Chaos by progress: the group's committed offsets say how far the
	// transforms got.
	progress := func() int64 {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		offs, err := adm.FetchOffsets(c, group)
		if err != nil {
			return -1
		}
		var sum int64
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Err == nil && o.Topic == in {
				sum += o.At
			}
		})
		return sum
	}
	type event struct {
		at   int64
		name string
		do   func()
	}
	events := []event{
		{total * 15 / 100, r.crash1.name, r.crash1.do},
		{total * 40 / 100, "a worker vanishes mid-transaction", func() {
			close(kill)
			select {
			case victim := <-vanished:
				t.Logf("%s vanished with a transaction open", victim.txnID)
				start(victim.txnID) // same transactional id: fences it and aborts its transaction
			case <-time.After(30 * time.Second):
				t.Fatal("no worker reached a transaction to vanish in")
			}
		}},
		{total * 65 / 100, r.crash2.name, r.crash2.do},
	}
	lastChange, last := time.Now(), int64(0)
	for done := int64(0); done < total; done = progress() {
		if done > last {
			lastChange, last = time.Now(), done
		}
		if time.Since(lastChange) > 45*time.Second {
			t.Fatalf("no progress for 45s: %d of %d input records committed (%s)", last, total, stats.String())
		}
		if len(events) > 0 && done >= events[0].at {
			t.Logf("%d/%d committed: %s", done, total, events[0].name)
			events[0].do()
			events = events[1:]
		}
		if ctx.Err() != nil {
			t.Fatalf("deadline: %d of %d input records committed (%s)", last, total, stats.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(events) > 0 {
		t.Fatalf("the run ended before %q", events[0].name)
	}
	stopWorkers()
	wg.Wait()
	t.Logf("transforms done: %s", stats.String())

	eosVerifyOutput(t, ctx, r.seeds, out, want)
	if all := eosCountAll(t, ctx, r.seeds, out); all <= total {
		t.Logf("read_uncommitted sees %d records: no aborted transaction had records", all)
	} else {
		t.Logf("read_uncommitted sees %d records, %d of aborted transactions", all, all-total)
	}
}

// eosProduceInput writes "in-<p>-<i>" at offset i of partition p and
// returns the partitions' record counts.
func eosProduceInput(t *testing.T, ctx context.Context, seeds []string, topic string, partitions, total int) []int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	counts := make([]int64, partitions)
	var firstErr atomic.Value
	for i := 0; i < total; i++ {
		p := i % partitions
		r := &kgo.Record{Topic: topic, Partition: int32(p), Value: fmt.Appendf(nil, "in-%d-%d", p, counts[p])}
		counts[p]++
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err, _ := firstErr.Load().(error); err != nil {
		t.Fatalf("produce input: %v", err)
	}
	return counts
}

// eosVerifyOutput reads the output with read_committed and checks that
// partition p holds exactly input offsets 0..want[p]-1 of partition p, in
// order, each once.
func eosVerifyOutput(t *testing.T, ctx context.Context, seeds []string, topic string, want []int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	next := make([]int64, len(want))
	var total, seen int64
	for _, w := range want {
		total += w
	}
	// Read until every record is seen, then a little longer: anything
	// more is a duplicate.
	quietUntil := time.Time{}
	for {
		c, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(c)
		cancel()
		if ctx.Err() != nil {
			t.Fatalf("read_committed consumer saw %d of %d records before the deadline (next input offsets %v of %v): "+
				"is the last stable offset stuck?", seen, total, next, want)
		}
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Logf("fetch %s/%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			seen++
			p := r.Partition
			exp := fmt.Appendf(nil, "%d:%d:in-%d-%d", p, next[p], p, next[p])
			if !bytes.Equal(r.Value, exp) {
				t.Fatalf("output partition %d offset %d holds %q, want %q: input records lost, duplicated or reordered",
					p, r.Offset, r.Value, exp)
			}
			next[p]++
		})
		if seen < total {
			continue
		}
		if quietUntil.IsZero() {
			quietUntil = time.Now().Add(2 * time.Second)
		}
		if time.Now().After(quietUntil) {
			break
		}
	}
	for p, w := range want {
		if next[p] != w {
			t.Fatalf("output partition %d has %d records, want %d", p, next[p], w)
		}
	}
}

// eosCountAll counts the output's records with read_uncommitted, aborted
// ones included.
func eosCountAll(t *testing.T, ctx context.Context, seeds []string, topic string) int64 {
	t.Helper()
	offs, err := kadm.NewClient(mustClient(t, seeds...)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	ends := map[int32]int64{}
	offs.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var n int64
	reached := func() bool {
		for _, e := range ends {
			if e > 0 {
				return false
			}
		}
		return true
	}
	for !reached() && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			n++
			if r.Offset+2 >= ends[r.Partition] { // the last record, or the last before a marker
				ends[r.Partition] = 0
			}
		})
	}
	return n
}

type eosStats struct {
	commits, aborts, restarts atomic.Int64
}

func (s *eosStats) String() string {
	return fmt.Sprintf("%d commits, %d aborts, %d session restarts", s.commits.Load(), s.aborts.Load(), s.restarts.Load())
}

// transformer is one consume-transform-produce worker: a
// GroupTransactSession, recreated (same transactional id) whenever a
// transaction ends in an error, as an application restarting would.
type transformer struct {
	t                   *testing.T
	seeds               []string
	txnID, group        string
	in, out             string
	dial                *testnet.CutDialer
	kill                chan struct{} // closed: the first worker to claim it vanishes inside its transaction
	claimed             *atomic.Bool
	vanished            chan<- *transformer
	stats               *eosStats
	closers             *sync.WaitGroup
	loggedFirstFailures atomic.Int64
}

func (w *transformer) opts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(w.seeds...), kgo.Dialer(w.dial.Dial),
		kgo.TransactionalID(w.txnID), kgo.TransactionTimeout(10 * time.Second),
		kgo.ConsumerGroup(w.group), kgo.ConsumeTopics(w.in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(500 * time.Millisecond),
		kgo.RebalanceTimeout(10 * time.Second), kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.FetchMaxPartitionBytes(64 << 10),
	}
	if dir := os.Getenv("SLUICE_EOS_CLIENT_LOGS"); dir != "" {
		f, err := os.OpenFile(filepath.Join(dir, w.txnID+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err == nil {
			opts = append(opts, kgo.WithLogger(kgo.BasicLogger(f, kgo.LogLevelDebug, func() string {
				return time.Now().Format("15:04:05.000 ")
			})))
		}
	}
	return opts
}

func (w *transformer) run(ctx context.Context) {
	for ctx.Err() == nil {
		sess, err := kgo.NewGroupTransactSession(w.opts()...)
		if err != nil {
			w.t.Errorf("%s: new session: %v", w.txnID, err)
			return
		}
		vanished := w.loop(ctx, sess)
		if vanished {
			w.dial.Cut()
		}
		// Close leaves the group; a vanished client's attempt fails at
		// its dialer. Either may retry for a while: do not wait here.
		w.closers.Add(1)
		go func() {
			defer w.closers.Done()
			sess.Close()
		}()
		if vanished {
			w.vanished <- w
			return
		}
		w.stats.restarts.Add(1)
	}
}

// loop runs transactions until ctx ends (false), one fails (false: start a
// new session) or the worker is told to vanish (true, with records of an
// open transaction written).
func (w *transformer) loop(ctx context.Context, sess *kgo.GroupTransactSession) bool {
	for {
		// Small transactions, paced, so that the crashes land in the
		// middle of the run and of transactions.
		fs := sess.PollRecords(ctx, 250)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return false
		}
		if fs.NumRecords() == 0 {
			continue // fetch errors: the client retries
		}
		if err := sess.Begin(); err != nil {
			w.logf("begin: %v", err)
			return false
		}
		e := kgo.AbortingFirstErrPromise(sess.Client())
		fs.EachRecord(func(r *kgo.Record) {
			sess.Produce(ctx, &kgo.Record{Topic: w.out, Partition: r.Partition,
				Value: fmt.Appendf(nil, "%d:%d:%s", r.Partition, r.Offset, r.Value)}, e.Promise())
		})
		produceErr := e.Err()
		select {
		case <-w.kill:
			if produceErr == nil && w.claimed.CompareAndSwap(false, true) {
				return true // records of an open transaction are written
			}
		default:
		}
		committed, err := sess.End(ctx, kgo.TransactionEndTry(produceErr == nil))
		switch {
		case ctx.Err() != nil:
			return false
		case err != nil:
			w.logf("end transaction (produce error %v): %v", produceErr, err)
			return false
		case committed:
			w.stats.commits.Add(1)
		default:
			w.stats.aborts.Add(1)
		}
		select {
		case <-ctx.Done():
		case <-time.After(40 * time.Millisecond):
		}
	}
}

func (w *transformer) logf(format string, args ...any) {
	if w.loggedFirstFailures.Add(1) <= 20 {
		w.t.Logf("%s: "+format, append([]any{w.txnID}, args...)...)
	}
}
