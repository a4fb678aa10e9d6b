package broker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/suites"
	"github.com/sluice-io/sluice/internal/testbroker"
)

// KIP-848 with franz-go's next-generation consumer (kgo.ServerSideBalancer):
// regular-expression subscriptions and a broker restart under running
// members. TestGroupBalancers runs the uniform and range assignors.

func kip848Opts(bal kgo.GroupBalancer) []kgo.Opt {
	return []kgo.Opt{kgo.Balancers(bal), kgo.ServerSideBalancer()}
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
	suites.Wait(t, 30*time.Second, "both matching topics consumed", func() bool {
		return seen.get("rx-one") >= 100 && seen.get("rx-two") >= 100
	})
	compatCreateTopic(t, adm, "rx-three", 3, nil)
	groupProduce(t, b.Addr(), "rx-three", 0, 100)
	suites.Wait(t, 30*time.Second, "the topic created later consumed", func() bool { return seen.get("rx-three") >= 100 })
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

// TestGroupKIP848BrokerRestart: suites.GroupKIP848Restart, whose Disrupt
// restarts the broker under the running members.
func TestGroupKIP848BrokerRestart(t *testing.T) {
	suites.GroupKIP848Restart(t, restartedBroker(t, testbroker.Config(t.TempDir())))
}
