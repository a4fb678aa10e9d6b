package broker_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testbroker"
)

// KIP-848 with franz-go's next-generation consumer (kgo.ServerSideBalancer):
// regular-expression subscriptions and a broker restart under running
// members. TestGroupBalancers runs the uniform and range assignors.

func kip848Opts(bal kgo.GroupBalancer) []kgo.Opt {
	return []kgo.Opt{kgo.Balancers(bal), kgo.ServerSideBalancer()}
}

// kip848Settled checks ConsumerGroupDescribe: the group is Stable at one
// epoch with the expected assignor, and every member owns its target.
func kip848Settled(t *testing.T, cl *kgo.Client, group, assignor string, members int) bool {
	t.Helper()
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(compatCtx(t, 5*time.Second), cl)
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
	resp, err := req.RequestWith(compatCtx(t, 5*time.Second), cl)
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

// TestGroupKIP848Regex subscribes by regular expression: the broker
// resolves it against every topic, and a matching topic created later is
// assigned and consumed without the members doing anything.
func TestGroupKIP848Regex(t *testing.T) {
	b := testbroker.Start(t)
	adm, _ := compatAdmin(t, b.Addr())
	for _, topic := range []string{"rx-one", "rx-two", "other"} {
		compatCreateTopic(t, adm, topic, 3, nil)
		groupProduce(t, b.Addr(), topic, 0, 100)
	}
	seen := &topicSeen{seen: map[string]int{}}
	for i := 0; i < 2; i++ {
		cl, err := kgo.NewClient(append([]kgo.Opt{
			kgo.SeedBrokers(b.Addr()), kgo.ConsumerGroup("g-rx"), kgo.ConsumeRegex(), kgo.ConsumeTopics("rx-.*"),
			kgo.FetchMaxWait(200 * time.Millisecond), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.MetadataMaxAge(time.Second), kgo.MetadataMinAge(250 * time.Millisecond),
		}, kip848Opts(kgo.StickyBalancer())...)...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ctx.Err() == nil {
				cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { seen.add(r.Topic) })
			}
		}()
		t.Cleanup(func() { cancel(); <-done; cl.Close() })
	}
	groupWait(t, 30*time.Second, "both matching topics consumed", func() bool {
		return seen.get("rx-one") >= 100 && seen.get("rx-two") >= 100
	})
	compatCreateTopic(t, adm, "rx-three", 3, nil)
	groupProduce(t, b.Addr(), "rx-three", 0, 100)
	groupWait(t, 30*time.Second, "the topic created later consumed", func() bool { return seen.get("rx-three") >= 100 })
	if n := seen.get("other"); n != 0 {
		t.Fatalf("consumed %d records of a topic the regex does not match", n)
	}
}

type topicSeen struct {
	mu   sync.Mutex
	seen map[string]int
}

func (s *topicSeen) add(topic string) {
	s.mu.Lock()
	s.seen[topic]++
	s.mu.Unlock()
}

func (s *topicSeen) get(topic string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[topic]
}

// TestGroupKIP848BrokerRestart restarts the broker under running KIP-848
// members: the group, its epochs and assignments come back from
// __consumer_offsets, the members carry on, and no record is missed.
func TestGroupKIP848BrokerRestart(t *testing.T) {
	cfg := testbroker.Config(t.TempDir())
	b := testbroker.StartConfig(t, cfg)
	adm, _ := compatAdmin(t, b.Addr())
	const topic, group, n = "k848-restart", "g848-restart", 1200
	compatCreateTopic(t, adm, topic, groupTestPartitions, nil)
	groupProduce(t, b.Addr(), topic, 0, n)
	seen := &groupSeen{seen: map[int]int{}}
	members := []*groupMember{
		startGroupMember(t, b.Addr(), group, topic, seen, kip848Opts(kgo.StickyBalancer())...),
		startGroupMember(t, b.Addr(), group, topic, seen, kip848Opts(kgo.StickyBalancer())...),
	}
	groupWait(t, 30*time.Second, "every record consumed", func() bool { return seen.count() == n })
	groupCommitAll(t, adm, group, topic, members)
	before, err := adm.FetchOffsets(compatCtx(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	dBefore, err := adm.DescribeGroups(compatCtx(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}

	b = testbroker.Restart(t, b, cfg)
	adm2, _ := compatAdmin(t, b.Addr())
	after, err := adm2.FetchOffsets(compatCtx(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	before.Each(func(o kadm.OffsetResponse) {
		a, ok := after.Lookup(o.Topic, o.Partition)
		if !ok || a.At < o.At {
			t.Errorf("%s/%d: committed %d before the restart, %d (found %v) after", o.Topic, o.Partition, o.At, a.At, ok)
		}
	})
	dAfter, err := adm2.DescribeGroups(compatCtx(t, 10*time.Second), group)
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
	groupProduce(t, b.Addr(), topic, n, n+600)
	groupWait(t, 30*time.Second, "records produced after the restart consumed", func() bool { return seen.count() == n+600 })
	groupWait(t, 20*time.Second, "the group stable again", func() bool { return groupStable(t, adm2, group, 2, topic) })
}
