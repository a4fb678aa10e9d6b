package suites

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Consumer-group scenarios with franz-go (classic eager and cooperative
// balancers, KIP-848's consumer protocol) and sarama: several members
// share a 6-partition topic, every record is consumed, offsets are
// committed, and a new client of the same group resumes from them.

const groupPartitions = 6

// Produce writes records from..to-1 of topic, values "topic-i", spread
// round-robin over the partitions.
func (e Env) Produce(t *testing.T, topic string, from, to int) {
	t.Helper()
	cl := e.client(t, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	defer cl.Close()
	var rs []*kgo.Record
	for i := from; i < to; i++ {
		rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: []byte(fmt.Sprintf("%s-%d", topic, i))})
	}
	if err := cl.ProduceSync(Ctx(t, 30*time.Second), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// Seen collects the record indexes consumed by all members.
type Seen struct {
	mu   sync.Mutex
	seen map[int]int
}

// NewSeen is an empty Seen.
func NewSeen() *Seen { return &Seen{seen: map[int]int{}} }

func (s *Seen) add(t *testing.T, topic string, r *kgo.Record) {
	i, err := strconv.Atoi(strings.TrimPrefix(string(r.Value), topic+"-"))
	if err != nil {
		t.Errorf("unexpected record %q", r.Value)
		return
	}
	s.mu.Lock()
	s.seen[i]++
	s.mu.Unlock()
}

// Count is the number of distinct records seen.
func (s *Seen) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// Member is a franz-go group consumer polling in its own goroutine.
type Member struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
}

// StartMember starts a member of group reading topic into seen; it
// stops with the test.
func (e Env) StartMember(t *testing.T, group, topic string, seen *Seen, opts ...kgo.Opt) *Member {
	t.Helper()
	base := append([]kgo.Opt{kgo.SeedBrokers(e.Seeds...)}, e.Opts...)
	base = append(base, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(100*time.Millisecond),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Member{cl: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachError(func(topic string, p int32, err error) {
				if ctx.Err() == nil {
					t.Logf("member fetch error %s/%d: %v", topic, p, err)
				}
			})
			fs.EachRecord(func(r *kgo.Record) { seen.add(t, topic, r) })
		}
	}()
	t.Cleanup(m.Stop)
	return m
}

// Stop commits what the member consumed and leaves the group.
func (m *Member) Stop() {
	select {
	case <-m.done:
		return
	default:
	}
	m.cancel()
	<-m.done
	m.cl.Close()
}

// CommitAll has every member commit until the group's committed offsets
// equal the end offsets.
func CommitAll(t *testing.T, adm *kadm.Client, group, topic string, members []*Member) {
	t.Helper()
	ctx := Ctx(t, 30*time.Second)
	Wait(t, 20*time.Second, "committed offsets at the log end", func() bool {
		for _, m := range members {
			m.cl.CommitUncommittedOffsets(ctx) // REBALANCE_IN_PROGRESS is retried by the loop
		}
		return CommittedAtEnd(ctx, adm, group, topic)
	})
}

// CommittedAtEnd reports whether the group's committed offsets of topic
// equal the end offsets of every partition.
func CommittedAtEnd(ctx context.Context, adm *kadm.Client, group, topic string) bool {
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
}

// resume starts one new member of group after more records were produced
// and checks it reads exactly those.
func (e Env) resume(t *testing.T, group, topic string, from, to int, opts ...kgo.Opt) {
	t.Helper()
	e.Produce(t, topic, from, to)
	seen := NewSeen()
	m := e.StartMember(t, group, topic, seen, opts...)
	Wait(t, 30*time.Second, "the resumed member to read the new records", func() bool { return seen.Count() >= to-from })
	m.Stop()
	seen.mu.Lock()
	defer seen.mu.Unlock()
	for i := range seen.seen {
		if i < from {
			t.Errorf("resumed member read record %d, committed before it started", i)
			break
		}
	}
}

// stable reports whether the group is Stable with want members whose
// assignments cover every partition of topic exactly once.
func stable(t *testing.T, adm *kadm.Client, group string, want int, topic string) bool {
	t.Helper()
	dg, err := adm.DescribeGroups(Ctx(t, 10*time.Second), group)
	if err != nil {
		return false
	}
	g := dg[group]
	return g.Err == nil && g.State == "Stable" && len(g.Members) == want && AssignedOnce(g.Members, topic, groupPartitions)
}

// AssignedOnce reports whether the members' assignments (in the consumer
// protocol) cover each of the partitions of topic exactly once.
func AssignedOnce(members []kadm.DescribedGroupMember, topic string, partitions int32) bool {
	owners := map[int32]int{}
	for _, m := range members {
		ca, ok := m.Assigned.AsConsumer()
		if !ok {
			return false
		}
		for _, at := range ca.Topics {
			if at.Topic == topic {
				for _, p := range at.Partitions {
					owners[p]++
				}
			}
		}
	}
	for p := range partitions {
		if owners[p] != 1 {
			return false
		}
	}
	return true
}

// kip848Opts make a franz-go client use KIP-848's consumer protocol.
func kip848Opts(bal kgo.GroupBalancer) []kgo.Opt {
	return []kgo.Opt{kgo.Balancers(bal), kgo.ServerSideBalancer()}
}

// kip848Settled checks ConsumerGroupDescribe: the group is Stable at one
// epoch with the expected assignor, and every member owns its target.
func kip848Settled(t *testing.T, cl *kgo.Client, group, assignor string, members int) bool {
	t.Helper()
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(Ctx(t, 5*time.Second), cl)
	if err != nil || len(resp.Groups) != 1 {
		return false
	}
	g := resp.Groups[0]
	if g.ErrorCode != 0 || g.State != "Stable" || g.AssignorName != assignor || g.Epoch != g.AssignmentEpoch || len(g.Members) != members {
		return false
	}
	for _, m := range g.Members {
		if m.MemberEpoch != g.Epoch || fmt.Sprint(m.Assignment.TopicPartitions) != fmt.Sprint(m.TargetAssignment.TopicPartitions) {
			return false
		}
	}
	return true
}

// listedGroupType is the group's type as ListGroups v5 reports it.
func listedGroupType(t *testing.T, cl *kgo.Client, group string) string {
	t.Helper()
	req := kmsg.NewPtrListGroupsRequest()
	req.Version = 5
	req.TypesFilter = []string{"consumer"}
	resp, err := req.RequestWith(Ctx(t, 5*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range resp.Groups {
		if g.Group == group {
			return g.GroupType
		}
	}
	return "classic" // filtered out: not a consumer group
}

// Balancer is a group balancer a scenario runs with.
type Balancer struct {
	Name     string
	Balancer kgo.GroupBalancer
	Assignor string // KIP-848: the server-side assignor; "" for the classic protocol
}

// Balancers are the classic balancers and KIP-848 (franz-go's
// next-generation consumer, kgo.ServerSideBalancer: the broker assigns
// with its uniform assignor, which franz-go asks for with the sticky
// balancer, or its range assignor).
func Balancers() []Balancer {
	return []Balancer{
		{"range", kgo.RangeBalancer(), ""},
		{"roundrobin", kgo.RoundRobinBalancer(), ""},
		{"sticky", kgo.StickyBalancer(), ""},
		{"cooperative-sticky", kgo.CooperativeStickyBalancer(), ""},
		{"kip848-uniform", kgo.StickyBalancer(), "uniform"},
		{"kip848-range", kgo.RangeBalancer(), "range"},
	}
}

// GroupBalancer: three members of one group consume half the records and
// settle (Stable, every partition assigned once); Disrupt hits the group's
// coordinator while they run; they consume the other half, settle again,
// commit at the log end, and a new member of the group after they left
// reads exactly the records produced after.
func GroupBalancer(t *testing.T, env Env, bal Balancer) {
	const n = 3000
	adm, cl := env.admin(t)
	topic, group := "grp-"+bal.Name, "g-"+bal.Name
	opts := []kgo.Opt{kgo.Balancers(bal.Balancer)}
	if bal.Assignor != "" {
		opts = append(opts, kgo.ServerSideBalancer())
	}
	settled := func() bool {
		return stable(t, adm, group, 3, topic) && (bal.Assignor == "" || kip848Settled(t, cl, group, bal.Assignor, 3))
	}
	createTopic(t, adm, topic, groupPartitions, nil)
	env.Produce(t, topic, 0, n/2)
	seen := NewSeen()
	var members []*Member
	for i := 0; i < 3; i++ {
		members = append(members, env.StartMember(t, group, topic, seen, opts...))
	}
	Wait(t, 30*time.Second, "the first half consumed", func() bool { return seen.Count() == n/2 })
	Wait(t, 20*time.Second, "a stable group of 3 with every partition assigned", settled)

	env.disrupt(t, GroupCoordinator, group)
	env.Produce(t, topic, n/2, n)
	Wait(t, 30*time.Second, "every record consumed", func() bool { return seen.Count() == n })
	Wait(t, 20*time.Second, "a stable group of 3 with every partition assigned, again", settled)
	if typ := listedGroupType(t, cl, group); (bal.Assignor != "") != (typ == "consumer") {
		t.Fatalf("ListGroups v5 says %s is a %q group (KIP-848 asked: %v)", group, typ, bal.Assignor != "")
	}
	CommitAll(t, adm, group, topic, members)
	for _, m := range members {
		m.Stop()
	}
	env.resume(t, group, topic, n, n+300, opts...)
}

// GroupRestart commits offsets of two members, stops them, then Disrupt
// hits the group's coordinator (a broker restart on one node): the group
// and its offsets come back from __consumer_offsets, and a consumer
// resumes from them.
func GroupRestart(t *testing.T, env Env) {
	adm, _ := env.admin(t)
	const topic, group, n = "grp-restart", "g-restart", 1200
	createTopic(t, adm, topic, groupPartitions, nil)
	env.Produce(t, topic, 0, n)
	seen := NewSeen()
	members := []*Member{
		env.StartMember(t, group, topic, seen),
		env.StartMember(t, group, topic, seen),
	}
	Wait(t, 30*time.Second, "every record consumed", func() bool { return seen.Count() == n })
	CommitAll(t, adm, group, topic, members)
	before, err := adm.FetchOffsets(Ctx(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		m.Stop()
	}

	env.disrupt(t, GroupCoordinator, group)
	adm2, _ := env.admin(t)
	after, err := adm2.FetchOffsets(Ctx(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	before.Each(func(o kadm.OffsetResponse) {
		a, ok := after.Lookup(o.Topic, o.Partition)
		if !ok || a.At != o.At {
			t.Errorf("%s/%d: committed %d before the restart, %d (found %v) after", o.Topic, o.Partition, o.At, a.At, ok)
		}
	})
	lg, err := adm2.ListGroups(Ctx(t, 10*time.Second))
	if err != nil || len(lg) != 1 || lg[group].State != "Empty" {
		t.Errorf("groups after restart: %+v %v, want %s Empty", lg, err, group)
	}
	env.resume(t, group, topic, n, n+120)
}

// GroupKIP848Restart: Disrupt hits the coordinator under two running
// KIP-848 members: the group, its epochs and assignments come back from
// __consumer_offsets, the members carry on, and no record is missed.
func GroupKIP848Restart(t *testing.T, env Env) {
	adm, _ := env.admin(t)
	const topic, group, n = "k848-restart", "g848-restart", 1200
	createTopic(t, adm, topic, groupPartitions, nil)
	env.Produce(t, topic, 0, n)
	seen := NewSeen()
	members := []*Member{
		env.StartMember(t, group, topic, seen, kip848Opts(kgo.StickyBalancer())...),
		env.StartMember(t, group, topic, seen, kip848Opts(kgo.StickyBalancer())...),
	}
	Wait(t, 30*time.Second, "every record consumed", func() bool { return seen.Count() == n })
	CommitAll(t, adm, group, topic, members)
	before, err := adm.FetchOffsets(Ctx(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	dBefore, err := adm.DescribeGroups(Ctx(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}

	env.disrupt(t, GroupCoordinator, group)
	adm2, _ := env.admin(t)
	after, err := adm2.FetchOffsets(Ctx(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	before.Each(func(o kadm.OffsetResponse) {
		a, ok := after.Lookup(o.Topic, o.Partition)
		if !ok || a.At < o.At {
			t.Errorf("%s/%d: committed %d before the restart, %d (found %v) after", o.Topic, o.Partition, o.At, a.At, ok)
		}
	})
	dAfter, err := adm2.DescribeGroups(Ctx(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(d kadm.DescribedGroups) []string {
		var out []string
		for _, m := range d[group].Members {
			out = append(out, m.MemberID)
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(ids(dBefore), ids(dAfter)) {
		t.Errorf("members before the restart %v, after %v", ids(dBefore), ids(dAfter))
	}
	env.Produce(t, topic, n, n+600)
	Wait(t, 30*time.Second, "records produced after the restart consumed", func() bool { return seen.Count() == n+600 })
	Wait(t, 20*time.Second, "the group stable again", func() bool { return stable(t, adm2, group, 2, topic) })
}

// saramaHandler records every message and marks it consumed.
type saramaHandler struct {
	seen *Seen
}

func (saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.seen.mu.Lock()
		h.seen.seen[int(m.Offset)*100+int(m.Partition)]++
		h.seen.mu.Unlock()
		s.MarkMessage(m, "")
	}
	return nil
}

// GroupSarama: sarama's ConsumerGroup, two members (range strategy,
// protocol 2.8) share a 6-partition topic and read half the records;
// Disrupt hits the group's coordinator; they read the rest and commit; the
// committed offsets reach the log end and the group is Stable with both.
func GroupSarama(t *testing.T, env Env) {
	adm, _ := env.admin(t)
	const topic, group, n = "grp-sarama", "g-sarama", 1200
	createTopic(t, adm, topic, groupPartitions, nil)
	env.Produce(t, topic, 0, n/2)

	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.ClientID = "sluice-group-sarama"
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Retry.Backoff = 100 * time.Millisecond
	cfg.Consumer.MaxWaitTime = 200 * time.Millisecond
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond

	seen := NewSeen()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		cg, err := sarama.NewConsumerGroup(env.Seeds, group, cfg)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cg.Close()
			for ctx.Err() == nil {
				if err := cg.Consume(ctx, []string{topic}, saramaHandler{seen}); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) && ctx.Err() == nil {
					t.Logf("sarama consume: %v", err)
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	Wait(t, 40*time.Second, "half the records consumed by sarama", func() bool { return seen.Count() == n/2 })
	env.disrupt(t, GroupCoordinator, group)
	env.Produce(t, topic, n/2, n)
	Wait(t, 40*time.Second, "every record consumed by sarama", func() bool { return seen.Count() == n })
	Wait(t, 20*time.Second, "sarama's commits at the log end", func() bool {
		return CommittedAtEnd(Ctx(t, 10*time.Second), adm, group, topic)
	})
	dg, err := adm.DescribeGroups(Ctx(t, 10*time.Second), group)
	if err != nil || dg[group].State != "Stable" || len(dg[group].Members) != 2 {
		t.Errorf("sarama group: %+v %v", dg[group], err)
	}
}
