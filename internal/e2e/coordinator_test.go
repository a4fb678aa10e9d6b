package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// coordinatorFlags are the serve flags of the coordinator failover tests:
// replicated internal topics with few partitions, short timers.
var coordinatorFlags = append(append([]string{}, replicatedFlags...),
	"--set", "offsets.topic.num.partitions=6", "--set", "transaction.state.log.num.partitions=6",
	"--set", "group.initial.rebalance.delay.ms=0",
	"--set", "transaction.abort.timed.out.transaction.cleanup.interval.ms=1000",
)

// startCoordinatorCluster starts three nodes, creates topic (6
// partitions, RF 3) and waits for its full ISR.
func startCoordinatorCluster(t *testing.T, topic string) (map[int32]*clusterNode, []string) {
	nodes := startCluster(t, 3, coordinatorFlags...)
	byID := map[int32]*clusterNode{}
	var seeds []string
	for _, n := range nodes {
		byID[n.id] = n
		seeds = append(seeds, n.kafka)
	}
	createReplicated(t, nodes[0], topic, 6, 3)
	waitFullISR(t, nodes[0], topic, 3)
	return byID, seeds
}

// coordinatorNode asks node n which broker coordinates key (type 0: a
// group, 1: a transactional id), retrying until one is named.
func coordinatorNode(t *testing.T, n *clusterNode, typ int8, key string) int32 {
	t.Helper()
	var id int32 = -1
	waitFor(t, fmt.Sprintf("a coordinator for %q", key), func(ctx context.Context) (bool, string) {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorType, req.CoordinatorKey, req.CoordinatorKeys = typ, key, []string{key}
		resp := n.direct(t, req).(*kmsg.FindCoordinatorResponse)
		code, node := resp.ErrorCode, resp.NodeID
		if len(resp.Coordinators) > 0 { // v4+
			code, node = resp.Coordinators[0].ErrorCode, resp.Coordinators[0].NodeID
		}
		if code != 0 {
			return false, kerr.ErrorForCode(code).Error()
		}
		id = node
		return true, ""
	})
	return id
}

func without(seeds []string, addr string) []string {
	var out []string
	for _, s := range seeds {
		if s != addr {
			out = append(out, s)
		}
	}
	return out
}

// TestGroupCoordinatorFailover: a cooperative-sticky group of two
// consumers reads a RF 3 topic and commits as it goes; the node that
// coordinates the group is SIGKILLed once. The group carries on through
// the new coordinator, no committed offset is lost or goes backwards,
// every record is consumed, and the final commits reach the end.
func TestGroupCoordinatorFailover(t *testing.T) {
	const topic, groupID, total = "cg-in", "cg-failover", 6000
	byID, seeds := startCoordinatorCluster(t, topic)

	// The input, all of it before the group starts.
	pcl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range total {
		pcl.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i % 60)), Value: []byte(fmt.Sprintf("r-%05d", i))}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := pcl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	pcl.Close()
	adm := kadm.NewClient(mustClient(t, seeds...))
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}

	coord := byID[coordinatorNode(t, byID[1], 0, groupID)]
	t.Logf("group coordinator: node %d", coord.id)

	// Two consumers, paced so that the kill lands mid-stream.
	var mu sync.Mutex
	seen := map[string]int{}
	consumed := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 2 {
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumerGroup(groupID), kgo.ConsumeTopics(topic),
			kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.AutoCommitInterval(200*time.Millisecond), kgo.SessionTimeout(6*time.Second),
			kgo.HeartbeatInterval(500*time.Millisecond), kgo.FetchMaxWait(200*time.Millisecond),
			kgo.MetadataMinAge(200*time.Millisecond), kgo.ClientID(fmt.Sprintf("consumer-%d", c)))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close() // commits what was consumed, leaves the group
			for {
				select {
				case <-stop:
					return
				default:
				}
				pctx, pcancel := context.WithTimeout(context.Background(), time.Second)
				fs := cl.PollRecords(pctx, 40)
				pcancel()
				fs.EachRecord(func(r *kgo.Record) {
					mu.Lock()
					seen[string(r.Value)]++
					consumed++
					mu.Unlock()
				})
				time.Sleep(60 * time.Millisecond)
			}
		}()
	}

	// Watch the committed offsets through the nodes that stay up: they
	// never go backwards. A new client each time: one that knew the
	// killed coordinator kept dialing it from its sharded OffsetFetch.
	// Reads are one at a time (two checkers run): a read that started
	// before another but is compared after it would look like a step back
	// when commits arrive in a burst, as the consumers' queued commits do
	// once the new coordinator answers.
	var wmu sync.Mutex
	high := map[int32]int64{}
	var backwards []string
	live := without(seeds, coord.kafka)
	check := func(ctx context.Context) (kadm.OffsetResponses, error) {
		wmu.Lock()
		defer wmu.Unlock()
		cl, err := kgo.NewClient(kgo.SeedBrokers(live...))
		if err != nil {
			return nil, err
		}
		defer cl.Close()
		got, err := kadm.NewClient(cl).FetchOffsets(ctx, groupID)
		if err != nil {
			return nil, err
		}
		got.Each(func(o kadm.OffsetResponse) {
			if o.Err != nil || o.Topic != topic {
				return
			}
			if o.At < high[o.Partition] {
				backwards = append(backwards, fmt.Sprintf("partition %d: %d after %d", o.Partition, o.At, high[o.Partition]))
			}
			high[o.Partition] = max(high[o.Partition], o.At)
		})
		return got, nil
	}
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Second)
			check(cctx)
			ccancel()
		}
	}()

	waitFor(t, "a third of the records consumed", func(context.Context) (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return consumed >= total/3, fmt.Sprint(consumed)
	})
	killed := time.Now()
	coord.kill()
	mu.Lock()
	atKill := consumed
	mu.Unlock()
	t.Logf("killed the group coordinator, node %d, at %d consumed", coord.id, atKill)

	// The group carries on: the commits reach the end of every partition.
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Second)
		got, err := check(cctx)
		ccancel()
		done, missing := err == nil, ""
		ends.Each(func(e kadm.ListedOffset) {
			o, ok := got.Lookup(topic, e.Partition)
			if !ok || o.Err != nil || o.At < e.Offset {
				done = false
				missing += fmt.Sprintf(" p%d:%d/%d", e.Partition, o.At, e.Offset)
			}
		})
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("commits did not reach the end within 30s of the kill (err %v):%s", err, missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("commits reached the end %s after the kill", time.Since(killed).Round(time.Millisecond))
	survivor := byID[1]
	if coord.id == 1 {
		survivor = byID[2]
	}
	newCoord := coordinatorNode(t, survivor, 0, groupID)
	close(stop)
	wg.Wait()
	<-watchDone

	if newCoord == coord.id {
		t.Errorf("the group is still coordinated by the killed node %d", coord.id)
	}
	if len(backwards) > 0 {
		t.Errorf("committed offsets went backwards: %s", strings.Join(backwards, "; "))
	}
	dups := 0
	for i := range total {
		n := seen[fmt.Sprintf("r-%05d", i)]
		if n == 0 {
			t.Errorf("record r-%05d never consumed", i)
			break
		}
		dups += n - 1
	}
	t.Logf("new coordinator node %d; %d records consumed, %d more than once", newCoord, consumed, dups)
}

// TestTxnCoordinatorFailover: a transactional producer writes
// transactions over six partitions led by the three brokers, committing
// most and aborting every fifth; the node that coordinates its
// transactional id is SIGKILLed once mid-stream. read_committed output
// holds every committed transaction exactly once and nothing aborted; a
// transaction whose end failed is all there or all absent, once.
func TestTxnCoordinatorFailover(t *testing.T) {
	const topic, txnID, perTxn = "txn-out", "txn-failover", 12
	byID, seeds := startCoordinatorCluster(t, topic)
	coord := byID[coordinatorNode(t, byID[1], 1, txnID)]
	t.Logf("transaction coordinator: node %d", coord.id)

	newProducer := func() *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.TransactionalID(txnID),
			kgo.TransactionTimeout(10*time.Second), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.DefaultProduceTopic(topic), kgo.MetadataMinAge(200*time.Millisecond),
			kgo.RequestRetries(100), kgo.RetryTimeout(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	const (
		committed = iota
		aborted
		unknown // the end failed: either outcome, but all or nothing
	)
	outcome := map[int]int{}
	cl := newProducer()
	defer func() { cl.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	var killed time.Time
	var firstAfter time.Duration
	killDone := make(chan struct{})
	restarts := 0
	for txn := 0; ; txn++ {
		commits := 0
		for _, o := range outcome {
			if o == committed {
				commits++
			}
		}
		if !killed.IsZero() && commits >= 30 && time.Since(killed) > 3*time.Second {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("only %d transactions committed in time", commits)
		}
		fail := func(stage string, err error, o int) {
			outcome[txn] = o
			if restarts < 10 {
				t.Logf("transaction %d: %s: %v (outcome %d)", txn, stage, err, o)
			}
			restarts++
			cl.Close() // a new producer fences and aborts what is open
			cl = newProducer()
		}
		if err := cl.BeginTransaction(); err != nil {
			fail("begin", err, aborted)
			continue
		}
		var perr error
		for i := range perTxn {
			r := &kgo.Record{Partition: int32(i % 6), Value: []byte(fmt.Sprintf("t%04d-%02d", txn, i))}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				perr = err
				break
			}
		}
		commit := perr == nil && txn%5 != 4
		if perr != nil {
			// Records may have landed; the abort (or the next producer's
			// fencing) must hide them.
			cl.AbortBufferedRecords(ctx)
		}
		if txn == 15 {
			// The kill races the commit: the coordinator dies before,
			// while or after it writes PrepareCommit and the markers.
			killed = time.Now()
			go func() {
				defer close(killDone)
				time.Sleep(2 * time.Millisecond)
				coord.kill()
			}()
			t.Logf("killing the transaction coordinator, node %d, while transaction %d commits", coord.id, txn)
		}
		err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit))
		switch {
		case err != nil && commit:
			fail("commit", err, unknown)
		case err != nil:
			fail("abort", err, aborted)
		case commit:
			outcome[txn] = committed
			if firstAfter == 0 && !killed.IsZero() {
				firstAfter = time.Since(killed)
			}
		default:
			outcome[txn] = aborted
		}
	}
	cl.Close()
	<-killDone
	t.Logf("%d transactions, %d producer restarts; first commit %s after the kill", len(outcome), restarts, firstAfter.Round(time.Millisecond))

	// Read everything committed, through the nodes that stay up.
	live := without(seeds, coord.kafka)
	rcl, err := kgo.NewClient(kgo.SeedBrokers(live...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer rcl.Close()
	want := 0
	for _, o := range outcome {
		if o == committed {
			want += perTxn
		}
	}
	got := map[string]int{}
	read := 0
	rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer rcancel()
	quietSince := time.Now()
	for time.Since(quietSince) < 2*time.Second || read < want {
		if rctx.Err() != nil {
			break
		}
		pctx, pcancel := context.WithTimeout(rctx, 500*time.Millisecond)
		fs := rcl.PollFetches(pctx)
		pcancel()
		fs.EachRecord(func(r *kgo.Record) {
			got[string(r.Value)]++
			read++
			quietSince = time.Now()
		})
	}
	perTxnSeen := map[int]int{}
	for v, n := range got {
		var txn, i int
		if _, err := fmt.Sscanf(v, "t%04d-%02d", &txn, &i); err != nil {
			t.Errorf("unexpected record %q", v)
			continue
		}
		if n > 1 {
			t.Errorf("record %s read %d times", v, n)
		}
		perTxnSeen[txn]++
	}
	counts := [3]int{}
	for txn, o := range outcome {
		counts[o]++
		switch n := perTxnSeen[txn]; {
		case o == committed && n != perTxn:
			t.Errorf("committed transaction %d: %d of %d records readable", txn, n, perTxn)
		case o == aborted && n != 0:
			t.Errorf("aborted transaction %d: %d records readable", txn, n)
		case o == unknown && n != 0 && n != perTxn:
			t.Errorf("transaction %d of unknown outcome: %d of %d records readable", txn, n, perTxn)
		}
	}
	t.Logf("%d committed, %d aborted, %d of unknown outcome; %d records read", counts[committed], counts[aborted], counts[unknown], read)
}

func mustClient(t *testing.T, seeds ...string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}
