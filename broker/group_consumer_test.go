package broker_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/suites"
	"github.com/sluice-io/sluice/internal/testbroker"
)

// Consumer-group acceptance tests with franz-go: several members share a
// 6-partition topic, every record is consumed, offsets are committed, and a
// new client of the same group (or the same group after a broker restart)
// resumes from the committed offsets.

const groupTestPartitions = 6

// groupProduce writes records from..to-1 of topic, values "topic-i",
// spread round-robin over the partitions.
func groupProduce(t *testing.T, addr, topic string, from, to int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for i := from; i < to; i++ {
		rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: []byte(fmt.Sprintf("%s-%d", topic, i))})
	}
	if err := cl.ProduceSync(compatCtx(t, 30*time.Second), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// groupSeen collects the record indexes consumed by all members.
type groupSeen struct {
	mu   sync.Mutex
	seen map[int]int
}

func (s *groupSeen) add(t *testing.T, topic string, r *kgo.Record) {
	i, err := strconv.Atoi(strings.TrimPrefix(string(r.Value), topic+"-"))
	if err != nil {
		t.Errorf("unexpected record %q", r.Value)
		return
	}
	s.mu.Lock()
	s.seen[i]++
	s.mu.Unlock()
}

func (s *groupSeen) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// groupMember is a franz-go group consumer polling in its own goroutine.
type groupMember struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
}

func startGroupMember(t *testing.T, addr, group, topic string, seen *groupSeen, opts ...kgo.Opt) *groupMember {
	t.Helper()
	base := []kgo.Opt{
		kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(100 * time.Millisecond),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &groupMember{cl: cl, cancel: cancel, done: make(chan struct{})}
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
	t.Cleanup(m.stop)
	return m
}

// stop commits what the member consumed and leaves the group.
func (m *groupMember) stop() {
	select {
	case <-m.done:
		return
	default:
	}
	m.cancel()
	<-m.done
	m.cl.Close()
}

func groupWait(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// groupCommitAll has every member commit until the group's committed
// offsets equal the end offsets.
func groupCommitAll(t *testing.T, adm *kadm.Client, group, topic string, members []*groupMember) {
	t.Helper()
	ctx := compatCtx(t, 30*time.Second)
	groupWait(t, 20*time.Second, "committed offsets at the log end", func() bool {
		for _, m := range members {
			m.cl.CommitUncommittedOffsets(ctx) // REBALANCE_IN_PROGRESS is retried by the loop
		}
		return committedAtEnd(ctx, adm, group, topic)
	})
}

// committedAtEnd reports whether the group's committed offsets of topic
// equal the end offsets of every partition.
func committedAtEnd(ctx context.Context, adm *kadm.Client, group, topic string) bool {
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

// TestGroupBalancers runs suites.GroupBalancer with every balancer: the
// classic ones and KIP-848.
func TestGroupBalancers(t *testing.T) {
	env := oneBroker(testbroker.Start(t))
	for _, bal := range suites.Balancers() {
		t.Run(bal.Name, func(t *testing.T) { suites.GroupBalancer(t, env, bal) })
	}
}

// assignedOnce reports whether the members' assignments (in the consumer
// protocol) cover every partition of topic exactly once.
func assignedOnce(members []kadm.DescribedGroupMember, topic string) bool {
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
	for p := int32(0); p < groupTestPartitions; p++ {
		if owners[p] != 1 {
			return false
		}
	}
	return true
}

// TestGroupBrokerRestart: suites.GroupRestart, whose Disrupt restarts the
// broker on the same data directory.
func TestGroupBrokerRestart(t *testing.T) {
	suites.GroupRestart(t, restartedBroker(t, testbroker.Config(t.TempDir())))
}
