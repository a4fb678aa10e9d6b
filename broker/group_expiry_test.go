package broker_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/broker"
	"github.com/sluice-io/sluice/internal/suites"
	"github.com/sluice-io/sluice/internal/testbroker"
)

// TestGroupOffsetExpiry runs offset expiry with a short retention through
// the real broker and franz-go: standalone commits expire after the
// retention; a group whose members stay subscribed keeps its offsets past
// it; a group whose last member left keeps them until the retention has
// passed since it became Empty, then loses them and disappears. After a
// restart (with the default 7-day retention, so nothing expires again) the
// expired groups and offsets stay gone and the live group's are back.
func TestGroupOffsetExpiry(t *testing.T) {
	const retention = 600 * time.Millisecond
	cfg := testbroker.Config(t.TempDir())
	cfg.OffsetsRetention, cfg.OffsetsRetentionCheckInterval = retention, 20*time.Millisecond
	b := testbroker.StartConfig(t, cfg)
	adm, _ := compatAdmin(t, b.Addr())
	const topic, n = "grp-expiry", 20
	compatCreateTopic(t, adm, topic, 2, nil)
	groupProduce(t, b.Addr(), topic, 0, n)

	seenLive, seenLeft := suites.NewSeen(), suites.NewSeen()
	live := startGroupMember(t, b.Addr(), "exp-live", topic, seenLive, kgo.DisableAutoCommit())
	left := startGroupMember(t, b.Addr(), "exp-left", topic, seenLeft, kgo.DisableAutoCommit())
	defer live.Stop()
	defer left.Stop()
	suites.Wait(t, 10*time.Second, "both groups to consume", func() bool { return seenLive.Count() == n && seenLeft.Count() == n })
	suites.CommitAll(t, adm, "exp-live", topic, []*suites.Member{live})
	suites.CommitAll(t, adm, "exp-left", topic, []*suites.Member{left})
	simple := kadm.Offsets{}
	simple.AddOffset(topic, 0, 5, -1)
	simple.AddOffset(topic, 1, 6, -1)
	if resp, err := adm.CommitOffsets(compatCtx(t, 5*time.Second), "exp-simple", simple); err != nil || resp.Error() != nil {
		t.Fatalf("standalone commit: %v %v", err, resp.Error())
	}
	committed := func(adm *kadm.Client, group string) int {
		t.Helper()
		os, err := adm.FetchOffsets(compatCtx(t, 5*time.Second), group)
		if err != nil {
			t.Fatalf("fetch offsets of %s: %v", group, err)
		}
		k := 0
		os.Each(func(o kadm.OffsetResponse) {
			if o.Err == nil && o.At >= 0 {
				k++
			}
		})
		return k
	}
	listed := func(adm *kadm.Client, group string) bool {
		t.Helper()
		lg, err := adm.ListGroups(compatCtx(t, 5*time.Second))
		if err != nil {
			t.Fatalf("list groups: %v", err)
		}
		_, ok := lg[group]
		return ok
	}
	gone := func(adm *kadm.Client, group string) func() bool {
		return func() bool { return committed(adm, group) == 0 && !listed(adm, group) }
	}

	// The standalone commits go; the two groups with members, whose
	// commits are older still, keep theirs.
	suites.Wait(t, 5*time.Second, "standalone commits to expire", gone(adm, "exp-simple"))
	for _, g := range []string{"exp-live", "exp-left"} {
		if k := committed(adm, g); k != 2 {
			t.Fatalf("%s with a subscribed member: %d offsets left after the retention, want 2", g, k)
		}
	}

	leftAt := time.Now()
	left.Stop()
	suites.Wait(t, 5*time.Second, "the emptied group to expire", gone(adm, "exp-left"))
	if d := time.Since(leftAt); d < retention {
		t.Errorf("emptied group expired %v after its member left, before the %v retention", d, retention)
	}
	if k := committed(adm, "exp-live"); k != 2 {
		t.Errorf("exp-live: %d offsets, want 2", k)
	}

	long := cfg
	long.OffsetsRetention, long.OffsetsRetentionCheckInterval = 0, 0 // 7 days, 10 minutes
	b = testbroker.Restart(t, b, long)
	adm2, _ := compatAdmin(t, b.Addr())
	for _, g := range []string{"exp-simple", "exp-left"} {
		if k, l := committed(adm2, g), listed(adm2, g); k != 0 || l {
			t.Errorf("%s after the restart: %d offsets, listed %v; the expiry tombstones did not hold", g, k, l)
		}
	}
	if k := committed(adm2, "exp-live"); k != 2 {
		t.Errorf("exp-live after the restart: %d offsets, want 2", k)
	}
}

// TestGroupSettings parses the coordinator's --set names as Kafka's.
func TestGroupSettings(t *testing.T) {
	var c broker.Config
	for _, s := range []struct{ name, value string }{
		{"offsets.retention.minutes", "90"}, {"offsets.retention.check.interval.ms", "1500"}, {"group.max.size", "3"},
	} {
		if err := c.ApplySetting(s.name, s.value); err != nil {
			t.Fatalf("%s=%s: %v", s.name, s.value, err)
		}
	}
	if c.OffsetsRetention != 90*time.Minute || c.OffsetsRetentionCheckInterval != 1500*time.Millisecond || c.GroupMaxSize != 3 {
		t.Errorf("parsed %v %v %d", c.OffsetsRetention, c.OffsetsRetentionCheckInterval, c.GroupMaxSize)
	}
	if err := c.ApplySetting("group.max.size", "2147483647"); err != nil || c.GroupMaxSize != 0 {
		t.Errorf("group.max.size at Kafka's default: %d, %v; want no limit", c.GroupMaxSize, err)
	}
	for _, s := range []struct{ name, value string }{
		{"offsets.retention.minutes", "0"}, {"offsets.retention.minutes", "x"}, {"offsets.retention.check.interval.ms", "0"},
		{"group.max.size", "0"}, {"group.max.size", "2147483648"},
	} {
		if err := c.ApplySetting(s.name, s.value); err == nil {
			t.Errorf("%s=%s accepted", s.name, s.value)
		}
	}
}
