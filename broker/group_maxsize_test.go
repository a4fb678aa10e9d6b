package broker_test

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/suites"
	"github.com/sluice-io/sluice/internal/testbroker"
)

// TestGroupMaxSize: with group.max.size 1, a second franz-go member of a
// consuming group hears GROUP_MAX_SIZE_REACHED from its poll, and the
// group goes on with the first member alone.
func TestGroupMaxSize(t *testing.T) {
	cfg := testbroker.Config(t.TempDir())
	if err := cfg.ApplySetting("group.max.size", "1"); err != nil {
		t.Fatal(err)
	}
	b := testbroker.StartConfig(t, cfg)
	adm, _ := compatAdmin(t, b.Addr())
	const topic, group = "grp-max-size", "g-max-size"
	compatCreateTopic(t, adm, topic, 2, nil)
	groupProduce(t, b.Addr(), topic, 0, 10)
	seen := suites.NewSeen()
	first := startGroupMember(t, b.Addr(), group, topic, seen)
	defer first.Stop()
	suites.Wait(t, 10*time.Second, "the first member to consume", func() bool { return seen.Count() == 10 })

	second, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	ctx := compatCtx(t, 10*time.Second)
	var refused error
	for refused == nil && ctx.Err() == nil {
		second.PollFetches(ctx).EachError(func(_ string, _ int32, err error) {
			if errors.Is(err, kerr.GroupMaxSizeReached) {
				refused = err
			}
		})
	}
	if refused == nil {
		t.Fatal("the second member never heard GROUP_MAX_SIZE_REACHED")
	}
	gs, err := adm.DescribeGroups(compatCtx(t, 5*time.Second), group)
	if err != nil || len(gs[group].Members) != 1 {
		t.Errorf("group after the refused join: %+v, %v; want one member", gs[group], err)
	}
}
