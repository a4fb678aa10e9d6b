package broker_test

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker"
	"github.com/sluice-io/sluice/internal/suites"
	"github.com/sluice-io/sluice/internal/testbroker"
	"github.com/sluice-io/sluice/internal/testnet"
)

// Churn test (issue 3): members of a classic consumer group join, leave
// cleanly, crash (their connections die and no LeaveGroup is ever sent) and
// come back repeatedly while 200k records flow into a 6-partition topic.
// Invariants checked:
//   - no partition has two owners in one generation (owners recorded from the
//     OnPartitions callbacks together with the member's GroupMetadata);
//   - committed offsets never go backwards (OffsetFetch polled every 100 ms);
//   - every record is consumed at least once;
//   - the group ends Stable with every partition assigned, to the surviving
//     members only.
//
// The restart variant also restarts the broker (same data directory and
// address) twice in the middle of the churn while the producer and the
// members run; the clients reconnect by themselves. Right after each
// restart it checks that the group is still there with members the old
// broker admitted, and that the committed offsets are at least those the
// broker acknowledged to members; then that the group settles again
// (Stable, the live members only, every partition assigned once). The
// offset monitor runs across the restarts, and every record must still be
// consumed.

const (
	churnRecords    = 200_000
	churnBatch      = 2_000
	churnSession    = 4 * time.Second
	churnOpInterval = 700 * time.Millisecond
	// franz-go refreshes metadata at most once per MetadataMinAge (5 s by
	// default); a client whose broker restarted under it waits that long,
	// once or twice, before it produces or fetches again.
	churnMetadataMinAge = 250 * time.Millisecond
)

// churnRestartBefore lists the churn ops the restart variant restarts the
// broker before: right after a member crashed (it is still in the group the
// new broker loads) and right after a clean leave.
var churnRestartBefore = []int{2, 4}

// The subtests run in parallel: each spends most of its time waiting for
// session timeouts and rebalances, and the whole test stays under 40 s with
// -race on two cores.
func TestGroupChurn(t *testing.T) {
	b := testbroker.Start(t, churnConfig)
	adm, _ := compatAdmin(t, b.Addr())
	for _, bal := range []struct {
		name string
		b    kgo.GroupBalancer
	}{
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
		{"range", kgo.RangeBalancer()},
	} {
		t.Run(bal.name, func(t *testing.T) {
			t.Parallel()
			runGroupChurn(t, churnRun{addr: b.Addr(), adm: adm, topic: "churn-" + bal.name, group: "g-churn-" + bal.name, bal: bal.b})
		})
	}
	// KIP-848: the broker assigns (uniform); a member's generation is its
	// epoch, and one owner per partition per epoch holds as well, since a
	// member moves to the next epoch only once it gave up what it lost.
	t.Run("kip848-uniform", func(t *testing.T) {
		t.Parallel()
		runGroupChurn(t, churnRun{addr: b.Addr(), adm: adm, topic: "churn-kip848", group: "g-churn-kip848",
			bal: kgo.StickyBalancer(), opts: []kgo.Opt{kgo.ServerSideBalancer()}})
	})
	// The restart variant needs a broker of its own.
	t.Run("cooperative-sticky-restarts", func(t *testing.T) {
		t.Parallel()
		cfg := testbroker.Config(t.TempDir())
		churnConfig(&cfg)
		b := testbroker.StartConfig(t, cfg)
		adm, _ := compatAdmin(t, b.Addr())
		runGroupChurn(t, churnRun{
			addr: b.Addr(), adm: adm, topic: "churn-restarts", group: "g-churn-restarts",
			bal:     kgo.CooperativeStickyBalancer(),
			restart: func() { b = testbroker.Restart(t, b, cfg) },
		})
	})
}

func churnConfig(c *broker.Config) {
	c.GroupMinSessionTimeout = time.Second
	c.ConsumerGroupSessionTimeout = churnSession // KIP-848 members' sessions are the broker's
}

// churnRun is one run of the churn.
type churnRun struct {
	addr         string
	adm          *kadm.Client
	topic, group string
	bal          kgo.GroupBalancer
	opts         []kgo.Opt // more client options (KIP-848)
	// restart, when set, restarts the broker on the same data directory and
	// address; it is called before the ops in churnRestartBefore.
	restart func()
}

// churnState is shared by all members of one run.
type churnState struct {
	t     *testing.T
	topic string

	seenMu sync.Mutex
	seen   []bool
	nseen  int

	ownMu  sync.Mutex
	owners map[int32]map[int32]string // generation -> partition -> member ID
	nerrs  int

	ackMu sync.Mutex
	acked map[int32]int64 // highest offset the broker acknowledged committing, by partition

	failed atomic.Bool
}

func (s *churnState) errorf(format string, args ...any) {
	s.failed.Store(true)
	s.t.Errorf(format, args...)
}

// own records that member owns parts in generation gen and reports a
// partition already owned by another member in that generation.
func (s *churnState) own(member string, gen int32, parts []int32) {
	if gen < 0 || member == "" {
		return
	}
	s.ownMu.Lock()
	defer s.ownMu.Unlock()
	g := s.owners[gen]
	if g == nil {
		g = map[int32]string{}
		s.owners[gen] = g
	}
	for _, p := range parts {
		if prev, ok := g[p]; ok && prev != member {
			if s.nerrs++; s.nerrs <= 10 {
				s.errorf("partition %d has two owners in generation %d: %s and %s", p, gen, prev, member)
			}
			continue
		}
		g[p] = member
	}
}

func (s *churnState) consumed(rs []*kgo.Record) {
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	for _, r := range rs {
		i, err := strconv.Atoi(string(r.Value))
		if err != nil || i < 0 || i >= len(s.seen) {
			s.errorf("unexpected record %q", r.Value)
			continue
		}
		if !s.seen[i] {
			s.seen[i] = true
			s.nseen++
		}
	}
}

// commit commits offsets for cl and records those the broker acknowledged.
// A refused commit (REBALANCE_IN_PROGRESS, a broker going away) means
// re-consumption, which is allowed.
func (s *churnState) commit(ctx context.Context, cl *kgo.Client, offsets map[string]map[int32]kgo.EpochOffset) {
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			return
		}
		sent := map[int32]int64{}
		for _, rt := range req.Topics {
			if rt.Topic == s.topic {
				for _, rp := range rt.Partitions {
					sent[rp.Partition] = rp.Offset
				}
			}
		}
		s.ackMu.Lock()
		defer s.ackMu.Unlock()
		for _, rt := range resp.Topics {
			if rt.Topic != s.topic {
				continue
			}
			for _, rp := range rt.Partitions {
				if o, ok := sent[rp.Partition]; ok && rp.ErrorCode == 0 && o > s.acked[rp.Partition] {
					s.acked[rp.Partition] = o
				}
			}
		}
	})
}

func (s *churnState) ackedOffsets() map[int32]int64 {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	return maps.Clone(s.acked)
}

func (s *churnState) count() int {
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	return s.nseen
}

// churnMember is one franz-go group member: autocommit off, rebalances
// blocked while a polled batch is processed and committed.
type churnMember struct {
	name   string
	cl     *kgo.Client
	net    *testnet.CutDialer
	dead   atomic.Bool // crashed: its callbacks no longer count
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	owned map[int32]bool
}

func (m *churnMember) ownedList() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ps []int32
	for p := range m.owned {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}

func startChurnMember(t *testing.T, s *churnState, addr, group, name string, bal kgo.GroupBalancer, opts ...kgo.Opt) *churnMember {
	t.Helper()
	m := &churnMember{name: name, net: &testnet.CutDialer{}, done: make(chan struct{}), owned: map[int32]bool{}}
	record := func(cl *kgo.Client) {
		id, gen := cl.GroupMetadata()
		s.own(id, gen, m.ownedList())
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(addr), kgo.Dialer(m.net.Dial), kgo.ClientID(name), kgo.MetadataMinAge(churnMetadataMinAge),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(s.topic), kgo.Balancers(bal),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(churnSession), kgo.RebalanceTimeout(10 * time.Second),
		kgo.HeartbeatInterval(200 * time.Millisecond),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(func(_ context.Context, cl *kgo.Client, a map[string][]int32) {
			if m.dead.Load() {
				return
			}
			m.mu.Lock()
			for _, p := range a[s.topic] {
				m.owned[p] = true
			}
			m.mu.Unlock()
			record(cl)
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, r map[string][]int32) {
			if m.dead.Load() {
				return
			}
			record(cl)
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			s.commit(cctx, cl, cl.UncommittedOffsets())
			cancel()
			m.mu.Lock()
			for _, p := range r[s.topic] {
				delete(m.owned, p)
			}
			m.mu.Unlock()
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) {
			m.mu.Lock()
			for _, p := range l[s.topic] {
				delete(m.owned, p)
			}
			m.mu.Unlock()
		}),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			fs := cl.PollFetches(pctx)
			pcancel()
			rs := fs.Records()
			if len(rs) > 0 && !m.dead.Load() {
				s.consumed(rs)
				// Everything polled is processed: commit up to there.
				cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
				s.commit(cctx, cl, cl.UncommittedOffsets())
				ccancel()
			}
			cl.AllowRebalance()
		}
	}()
	return m
}

// leave stops polling and closes the client, which commits in
// OnPartitionsRevoked and sends LeaveGroup.
func (m *churnMember) leave() {
	m.cancel()
	<-m.done
	m.cl.AllowRebalance()
	m.cl.Close()
}

// crash kills the member's connections and refuses new ones, so the broker
// only learns of its death through the session timeout. The client is
// closed in the background (its LeaveGroup cannot reach the broker).
func (m *churnMember) crash(wg *sync.WaitGroup) {
	m.dead.Store(true)
	m.net.Cut()
	m.cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-m.done
		m.cl.AllowRebalance()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		m.cl.LeaveGroupContext(ctx)
		m.cl.Close()
	}()
}

func runGroupChurn(t *testing.T, run churnRun) {
	start := time.Now()
	addr, adm, topic, group := run.addr, run.adm, run.topic, run.group
	compatCreateTopic(t, adm, topic, groupTestPartitions, nil)
	s := &churnState{t: t, topic: topic, seen: make([]bool, churnRecords), owners: map[int32]map[int32]string{}, acked: map[int32]int64{}}
	var bg sync.WaitGroup // producer, offset monitor, crashed clients' Close
	defer bg.Wait()

	// Producer: 200k records in batches, bounded by a deadline. With
	// restarts it holds its last batch until they are done, so that records
	// flow across every restart.
	pctx, pcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer pcancel()
	produced := make(chan error, 1)
	var restartsDone chan struct{}
	if run.restart != nil {
		restartsDone = make(chan struct{})
		defer func() {
			select {
			case <-restartsDone:
			default:
				close(restartsDone) // an early exit: let the producer end
			}
		}()
	}
	bg.Add(1)
	go func() {
		defer bg.Done()
		// Sluice does not serve InitProducerID yet: franz-go opens a
		// connection to ask for a producer id, finds the API missing and
		// leaves the connection idle without one response. When a restart
		// cuts it, the next request on it reads EOF first thing, which
		// franz-go takes for a TLS or SASL misconfiguration: it fails the
		// batches it has not sent yet instead of retrying them.
		// AlwaysRetryEOF makes it retry as for any other cut connection.
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
			kgo.MetadataMinAge(churnMetadataMinAge), kgo.AlwaysRetryEOF())
		if err != nil {
			produced <- err
			return
		}
		defer cl.Close()
		for i := 0; i < churnRecords; i += churnBatch {
			if i+churnBatch >= churnRecords && restartsDone != nil {
				select {
				case <-restartsDone:
				case <-pctx.Done():
				}
			}
			rs := make([]*kgo.Record, 0, churnBatch)
			for j := i; j < i+churnBatch && j < churnRecords; j++ {
				rs = append(rs, &kgo.Record{Topic: topic, Value: []byte(strconv.Itoa(j))})
			}
			if err := cl.ProduceSync(pctx, rs...).FirstErr(); err != nil {
				produced <- fmt.Errorf("produce batch at %d: %w", i, err)
				return
			}
			select {
			case <-pctx.Done():
			case <-time.After(40 * time.Millisecond):
			}
		}
		produced <- nil
	}()

	// Offset monitor: committed offsets must never go backwards.
	mctx, mcancel := context.WithCancel(context.Background())
	defer mcancel()
	var fetches atomic.Int64
	bg.Add(1)
	go func() {
		defer bg.Done()
		last := map[int32]int64{}
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-mctx.Done():
				return
			case <-tick.C:
			}
			fctx, fcancel := context.WithTimeout(mctx, 5*time.Second)
			offs, err := adm.FetchOffsets(fctx, group)
			fcancel()
			if err != nil {
				continue
			}
			fetches.Add(1)
			offs.Each(func(o kadm.OffsetResponse) {
				if o.Err != nil || o.Topic != topic || o.At < 0 {
					return
				}
				if prev, ok := last[o.Partition]; ok && o.At < prev {
					s.errorf("committed offset of %s/%d went backwards: %d -> %d", topic, o.Partition, prev, o.At)
				}
				if o.At > last[o.Partition] {
					last[o.Partition] = o.At
				}
			})
		}
	}()

	// Churn: join, crash, join, leave, ... until the producer is done.
	var alive []*churnMember
	seq := 0
	join := func() {
		seq++
		alive = append(alive, startChurnMember(t, s, addr, group, fmt.Sprintf("m%d", seq), run.bal, run.opts...))
	}
	defer func() { // on an early exit (t.Fatal), stop whoever is left
		for _, m := range alive {
			m.leave()
		}
	}()
	for i := 0; i < 3; i++ {
		join()
	}
	churnDeadline := time.Now().Add(30 * time.Second)

	// restart restarts the broker between two churn ops and checks what
	// must survive it before the churn goes on; its time does not count
	// against the churn deadline.
	var restarts int
	var fetchesAtRestart int64
	restart := func() {
		rstart := time.Now()
		// Restart once the group has something to lose: an acknowledged
		// commit means a generation was synced (and written) and offsets
		// were written. On a loaded machine the first rebalance can outlast
		// the ops before the first restart; a group that never completed
		// one is rightly gone after a restart, as in Kafka.
		suites.Wait(t, 20*time.Second, "a commit acknowledged before the restart", func() bool {
			return len(s.ackedOffsets()) > 0
		})
		s.ownMu.Lock()
		before := map[string]bool{} // member ids assigned partitions so far
		for _, g := range s.owners {
			for _, id := range g {
				before[id] = true
			}
		}
		s.ownMu.Unlock()
		run.restart()
		restarts++
		fetchesAtRestart = fetches.Load()
		ctx := compatCtx(t, 30*time.Second)

		// The group came back from the log: members the old broker admitted
		// are still in it (a group made anew by rejoining clients could not
		// hold their ids; the loaded members stay a session timeout at least).
		var dg kadm.DescribedGroup
		suites.Wait(t, 15*time.Second, "the group described after the restart", func() bool {
			d, err := adm.DescribeGroups(ctx, group)
			if err != nil {
				return false
			}
			dg = d[group]
			return dg.Err == nil
		})
		var kept []string
		for _, m := range dg.Members {
			if before[m.MemberID] {
				kept = append(kept, m.ClientID)
			}
		}
		if len(kept) == 0 || dg.State == "Dead" || dg.State == "Empty" {
			t.Errorf("restart %d: group %s is %s with members %v, none of them admitted before the restart", restarts, group, dg.State, dg.Members)
		}

		// No acknowledged commit is lost: every commit acknowledged so far
		// (by the old broker or already by the new one) is visible.
		acked := s.ackedOffsets()
		var committed kadm.OffsetResponses
		suites.Wait(t, 15*time.Second, "an offset fetch after the restart", func() bool {
			var err error
			committed, err = adm.FetchOffsets(ctx, group)
			return err == nil
		})
		for p, a := range acked {
			if c, ok := committed.Lookup(topic, p); !ok || c.Err != nil || c.At < a {
				t.Errorf("restart %d: %s/%d committed %d (found %v, %v) after the restart, %d acknowledged", restarts, topic, p, c.At, ok, c.Err, a)
			}
		}

		// It settles again: the members the new broker loaded but that are
		// gone (crashed, left) expire, the live ones rejoin.
		suites.Wait(t, 20*time.Second, fmt.Sprintf("restart %d: a Stable group of %d live members with every partition assigned", restarts, len(alive)), func() bool {
			return churnSettled(t, adm, group, topic, alive)
		})
		t.Logf("restart %d at %v: %d of %d members kept, commits of %d partitions acknowledged, settled %v later",
			restarts, rstart.Sub(start).Round(time.Millisecond), len(kept), len(dg.Members), len(acked), time.Since(rstart).Round(time.Millisecond))
		churnDeadline = churnDeadline.Add(time.Since(rstart))
		if restarts == len(churnRestartBefore) {
			close(restartsDone)
		}
	}

	ops := []string{"join", "crash", "join", "leave"}
	minOps := 12 // three rounds
	if run.restart != nil {
		minOps = 8 // two rounds and two restarts, within the time budget
	}
	var joins, leaves, crashes int
	prodDone := false
	for op := 0; (!prodDone || op < minOps) && time.Now().Before(churnDeadline); op++ {
		time.Sleep(churnOpInterval)
		select {
		case err := <-produced:
			if err != nil {
				t.Fatal(err)
			}
			prodDone = true
		default:
		}
		if run.restart != nil && restarts < len(churnRestartBefore) && op == churnRestartBefore[restarts] {
			restart()
		}
		switch ops[op%len(ops)] {
		case "join":
			join()
			joins++
		case "leave":
			// the oldest member leaves; its replacement joins next
			alive[0].leave()
			alive = alive[1:]
			leaves++
		case "crash":
			m := alive[len(alive)/2]
			alive = append(alive[:len(alive)/2:len(alive)/2], alive[len(alive)/2+1:]...)
			m.crash(&bg)
			crashes++
		}
	}
	if !prodDone {
		select {
		case err := <-produced:
			if err != nil {
				t.Fatal(err)
			}
		case <-pctx.Done():
			t.Fatalf("producer did not finish")
		}
	}
	t.Logf("churn done after %v: %d joins, %d clean leaves, %d crashes, %d restarts, %d members left, %d/%d records seen",
		time.Since(start).Round(time.Millisecond), joins, leaves, crashes, restarts, len(alive), s.count(), churnRecords)
	if run.restart != nil && restarts != len(churnRestartBefore) {
		t.Errorf("the broker restarted %d times, want %d", restarts, len(churnRestartBefore))
	}

	// Every record consumed at least once.
	suites.Wait(t, 45*time.Second, "every record consumed", func() bool { return s.count() == churnRecords })

	// All consumed offsets committed, then the group settles: Stable, the
	// surviving members only, every partition assigned once.
	ctx := compatCtx(t, 60*time.Second)
	suites.Wait(t, 30*time.Second, "committed offsets at the log end", func() bool {
		for _, m := range alive {
			s.commit(ctx, m.cl, m.cl.UncommittedOffsets())
		}
		return suites.CommittedAtEnd(ctx, adm, group, topic)
	})
	suites.Wait(t, 30*time.Second, fmt.Sprintf("a Stable group of %d with every partition assigned", len(alive)), func() bool {
		return churnSettled(t, adm, group, topic, alive)
	})
	if run.restart != nil && fetches.Load() <= fetchesAtRestart {
		t.Errorf("the offset monitor fetched nothing after the last restart")
	}
	// Describe once more for the log.
	dg, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	s.ownMu.Lock() // a member's callbacks may still be recording
	generations := len(s.owners)
	s.ownMu.Unlock()
	t.Logf("final: state %s, %d members, %d generations recorded, %d offset fetches, %v",
		dg[group].State, len(dg[group].Members), generations, fetches.Load(), time.Since(start).Round(time.Millisecond))

	for _, m := range alive {
		m.leave()
	}
	alive = nil
	mcancel()
	bg.Wait()
}

// churnSettled reports whether the group is Stable, its members are exactly
// the live ones (by client id), and every partition of topic is assigned
// once.
func churnSettled(t *testing.T, adm *kadm.Client, group, topic string, alive []*churnMember) bool {
	dg, err := adm.DescribeGroups(compatCtx(t, 10*time.Second), group)
	if err != nil {
		return false
	}
	g := dg[group]
	if g.Err != nil || g.State != "Stable" || len(g.Members) != len(alive) {
		return false
	}
	live := map[string]bool{}
	for _, m := range alive {
		live[m.name] = true
	}
	for _, m := range g.Members {
		if !live[m.ClientID] {
			return false
		}
		delete(live, m.ClientID)
	}
	return suites.AssignedOnce(g.Members, topic, groupTestPartitions)
}
