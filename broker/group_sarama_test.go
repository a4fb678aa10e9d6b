package broker_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sluice-io/sluice/internal/testbroker"
)

// saramaGroupHandler records every message and marks it consumed.
type saramaGroupHandler struct {
	t     *testing.T
	topic string
	seen  *groupSeen
}

func (saramaGroupHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (saramaGroupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h saramaGroupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.seen.mu.Lock()
		h.seen.seen[int(m.Offset)*100+int(m.Partition)]++
		h.seen.mu.Unlock()
		s.MarkMessage(m, "")
	}
	return nil
}

// TestGroupSarama is a smoke test of sarama's ConsumerGroup: two members
// (range strategy, protocol 2.8) share a 6-partition topic, read every
// record and commit; the committed offsets reach the log end.
func TestGroupSarama(t *testing.T) {
	b := testbroker.Start(t)
	adm, _ := compatAdmin(t, b.Addr())
	const topic, group, n = "grp-sarama", "g-sarama", 1200
	compatCreateTopic(t, adm, topic, groupTestPartitions, nil)
	groupProduce(t, b.Addr(), topic, 0, n)

	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.ClientID = "sluice-group-sarama"
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Retry.Backoff = 100 * time.Millisecond
	cfg.Consumer.MaxWaitTime = 200 * time.Millisecond
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond

	seen := &groupSeen{seen: map[int]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		cg, err := sarama.NewConsumerGroup([]string{b.Addr()}, group, cfg)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cg.Close()
			for ctx.Err() == nil {
				if err := cg.Consume(ctx, []string{topic}, saramaGroupHandler{t, topic, seen}); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) && ctx.Err() == nil {
					t.Logf("sarama consume: %v", err)
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	groupWait(t, 40*time.Second, "every record consumed by sarama", func() bool { return seen.count() == n })
	groupWait(t, 20*time.Second, "sarama's commits at the log end", func() bool {
		ends, err := adm.ListEndOffsets(compatCtx(t, 10*time.Second), topic)
		if err != nil {
			return false
		}
		committed, err := adm.FetchOffsets(compatCtx(t, 10*time.Second), group)
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
	dg, err := adm.DescribeGroups(compatCtx(t, 10*time.Second), group)
	if err != nil || dg[group].State != "Stable" || len(dg[group].Members) != 2 {
		t.Errorf("sarama group: %+v %v", dg[group], err)
	}
}
