package broker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/broker"
	"github.com/sluice-io/sluice/internal/testbroker"
)

// Churn test (issue 3): members of a classic consumer group join, leave
// cleanly, crash (their connections die and no LeaveGroup is ever sent) and
// come back repeatedly while 200k records flow into a 6-partition topic.
// Invariants checked:
//   - no partition has two owners in one generation (owners recorded from the
//     OnPartitions callbacks together with the member's GroupMetadata);
//   - committed offsets never go backwards (OffsetFetch polled every 100 ms);
//   - every record is consumed at least once;
//   - the group ends Stable with every partition assigned.

const (
	churnRecords    = 200_000
	churnBatch      = 2_000
	churnSession    = 4 * time.Second
	churnOpInterval = 700 * time.Millisecond
)

func TestGroupChurn(t *testing.T) {
	b := testbroker.Start(t, func(c *broker.Config) { c.GroupMinSessionTimeout = time.Second })
	adm, _ := compatAdmin(t, b.Addr())
	for _, bal := range []struct {
		name string
		b    kgo.GroupBalancer
	}{
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
		{"range", kgo.RangeBalancer()},
	} {
		t.Run(bal.name, func(t *testing.T) {
			runGroupChurn(t, b.Addr(), adm, "churn-"+bal.name, "g-churn-"+bal.name, bal.b)
		})
	}
}

// churnNet is a member's dialer: kill closes every connection the client
// opened and refuses new ones, so the member vanishes without a LeaveGroup.
type churnNet struct {
	mu    sync.Mutex
	dead  bool
	conns []net.Conn
}

func (n *churnNet) dial(ctx context.Context, network, host string) (net.Conn, error) {
	n.mu.Lock()
	dead := n.dead
	n.mu.Unlock()
	if dead {
		return nil, errors.New("churn: member crashed")
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.dead {
		c.Close()
		return nil, errors.New("churn: member crashed")
	}
	n.conns = append(n.conns, c)
	return c, nil
}

func (n *churnNet) kill() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dead = true
	for _, c := range n.conns {
		c.Close()
	}
	n.conns = nil
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
	net    *churnNet
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

func startChurnMember(t *testing.T, s *churnState, addr, group, name string, bal kgo.GroupBalancer) *churnMember {
	t.Helper()
	m := &churnMember{name: name, net: &churnNet{}, done: make(chan struct{}), owned: map[int32]bool{}}
	record := func(cl *kgo.Client) {
		id, gen := cl.GroupMetadata()
		s.own(id, gen, m.ownedList())
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr), kgo.Dialer(m.net.dial), kgo.ClientID(name),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(s.topic), kgo.Balancers(bal),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(churnSession), kgo.RebalanceTimeout(10*time.Second),
		kgo.HeartbeatInterval(200*time.Millisecond),
		kgo.FetchMaxWait(200*time.Millisecond),
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
			cl.CommitUncommittedOffsets(cctx) // a failure means re-consumption, which is allowed
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
	)
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
				cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
				cl.CommitRecords(cctx, rs...) // REBALANCE_IN_PROGRESS etc.: re-consumed later
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
	m.net.kill()
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

func runGroupChurn(t *testing.T, addr string, adm *kadm.Client, topic, group string, bal kgo.GroupBalancer) {
	start := time.Now()
	compatCreateTopic(t, adm, topic, groupTestPartitions, nil)
	s := &churnState{t: t, topic: topic, seen: make([]bool, churnRecords), owners: map[int32]map[int32]string{}}
	var bg sync.WaitGroup // producer, offset monitor, crashed clients' Close
	defer bg.Wait()

	// Producer: 200k records in batches, bounded by a deadline.
	pctx, pcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer pcancel()
	produced := make(chan error, 1)
	bg.Add(1)
	go func() {
		defer bg.Done()
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
		if err != nil {
			produced <- err
			return
		}
		defer cl.Close()
		for i := 0; i < churnRecords; i += churnBatch {
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
		alive = append(alive, startChurnMember(t, s, addr, group, fmt.Sprintf("m%d", seq), bal))
	}
	defer func() { // on an early exit (t.Fatal), stop whoever is left
		for _, m := range alive {
			m.leave()
		}
	}()
	for i := 0; i < 3; i++ {
		join()
	}
	ops := []string{"join", "crash", "join", "leave"}
	var joins, leaves, crashes int
	prodDone := false
	churnDeadline := time.Now().Add(30 * time.Second)
	for op := 0; (!prodDone || op < 12) && time.Now().Before(churnDeadline); op++ {
		time.Sleep(churnOpInterval)
		select {
		case err := <-produced:
			if err != nil {
				t.Fatal(err)
			}
			prodDone = true
		default:
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
	t.Logf("churn done after %v: %d joins, %d clean leaves, %d crashes, %d members left, %d/%d records seen",
		time.Since(start).Round(time.Millisecond), joins, leaves, crashes, len(alive), s.count(), churnRecords)

	// Every record consumed at least once.
	groupWait(t, 45*time.Second, "every record consumed", func() bool { return s.count() == churnRecords })

	// All consumed offsets committed, then the group settles: Stable, the
	// surviving members only, every partition assigned once.
	ctx := compatCtx(t, 60*time.Second)
	groupWait(t, 30*time.Second, "committed offsets at the log end", func() bool {
		for _, m := range alive {
			m.cl.CommitUncommittedOffsets(ctx)
		}
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return false
		}
		committed, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		ok := true
		ends.Each(func(e kadm.ListedOffset) {
			c, found := committed.Lookup(e.Topic, e.Partition)
			ok = ok && found && c.At == e.Offset
		})
		return ok
	})
	groupWait(t, 30*time.Second, fmt.Sprintf("a Stable group of %d with every partition assigned", len(alive)), func() bool {
		return groupStable(t, adm, group, len(alive), topic)
	})
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
