package group

import (
	"io"
	"log/slog"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Records as they sit in __consumer_offsets, for building a coordinator's
// state through Load with chosen timestamps.

func commitRec(group, topic string, p int32, committed, expireAt int64) Record {
	v := kmsg.NewOffsetCommitValue()
	v.Version, v.Offset, v.CommitTimestamp, v.LeaderEpoch = 3, 7, committed, -1
	if expireAt != 0 {
		v.Version, v.ExpireTimestamp = 1, expireAt
	}
	return Record{Key: offsetKey(group, topic, p), Value: v.AppendTo(nil)}
}

// groupRec is a GroupMetadataValue of the given version; each member
// subscribes (consumer protocol) to the topics listed for it.
func groupRec(group, protocolType string, version int16, stateTime int64, members map[string][]string) Record {
	v := kmsg.NewGroupMetadataValue()
	v.Version, v.ProtocolType, v.Generation, v.CurrentStateTimestamp = version, protocolType, 4, stateTime
	if len(members) > 0 {
		v.Protocol, v.Leader = kmsg.StringPtr("range"), kmsg.StringPtr("m0")
	}
	ids := make([]string, 0, len(members))
	for id := range members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		sub := kmsg.NewConsumerMemberMetadata()
		sub.Topics = members[id]
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID, vm.ClientID, vm.ClientHost = id, id, "/h"
		vm.SessionTimeoutMillis, vm.RebalanceTimeoutMillis = 30_000, 30_000
		vm.Subscription = sub.AppendTo(nil)
		v.Members = append(v.Members, vm)
	}
	return Record{Key: groupKey(group), Value: v.AppendTo(nil)}
}

func expiryCoordinator(log *memLog, retention time.Duration, recs ...Record) *Coordinator {
	c := New(Config{
		Log: log, OffsetsRetention: retention, OffsetsRetentionCheckInterval: time.Hour,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Partitions: func(string) int32 { return 3 },
	})
	for _, r := range recs {
		if err := c.Load(r.Key, r.Value); err != nil {
			panic(err)
		}
	}
	c.Loaded()
	return c
}

// expireAt runs one expiry pass as if the clock read ms.
func expireAt(c *Coordinator, ms int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireOffsets(time.UnixMilli(ms))
}

// offsetsOf lists a group's committed offsets as "topic/partition".
func offsetsOf(c *Coordinator, group string) []string {
	got, _ := c.FetchOffsets(group, nil, false)
	var out []string
	for _, t := range got {
		for _, p := range t.Partitions {
			out = append(out, t.Topic+"/"+string(rune('0'+p.Partition)))
		}
	}
	return out
}

func listed(c *Coordinator, group string) bool {
	for _, g := range c.ListGroups(nil, nil) {
		if g.Group == group {
			return true
		}
	}
	return false
}

// tombstones lists the tombstones written to log as "offset g t/p" or
// "group g".
func tombstones(log *memLog) []string {
	log.mu.Lock()
	defer log.mu.Unlock()
	var out []string
	for _, r := range log.recs {
		if r.Value != nil {
			continue
		}
		var ok kmsg.OffsetCommitKey
		var gk kmsg.GroupMetadataKey
		switch {
		case ok.ReadFrom(r.Key) == nil && (ok.Version == 0 || ok.Version == 1):
			out = append(out, "offset "+ok.Group+" "+ok.Topic+"/"+string(rune('0'+ok.Partition)))
		case gk.ReadFrom(r.Key) == nil && gk.Version == 2:
			out = append(out, "group "+gk.Group)
		}
	}
	sort.Strings(out)
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestExpiryRules drives each of Kafka's expiry cases with state loaded
// from records, so that commit and state times are chosen, and checks what
// is left and which tombstones were written at each step.
func TestExpiryRules(t *testing.T) {
	const ret = 1000 // ms of retention
	const t0 = int64(1_700_000_000_000)
	type step struct {
		at         int64    // clock (ms after t0)
		offsets    []string // left afterwards
		listed     bool     // the group still exists
		tombstones []string // written so far
	}
	for _, tc := range []struct {
		name  string
		group string
		recs  []Record
		steps []step
	}{{
		name:  "empty group counts from when it became empty",
		group: "g",
		recs: []Record{
			commitRec("g", "t", 0, t0, 0), commitRec("g", "t", 1, t0+100, 0),
			groupRec("g", "consumer", 3, t0+5000, nil), // emptied long after the commits
		},
		steps: []step{
			{at: 5000 + ret - 1, offsets: []string{"t/0", "t/1"}, listed: true},
			{at: 5000 + ret, listed: false, tombstones: []string{"group g", "offset g t/0", "offset g t/1"}},
		},
	}, {
		name:  "empty group without a state time counts from each commit",
		group: "g",
		recs: []Record{
			commitRec("g", "t", 0, t0, 0), commitRec("g", "t", 1, t0+500, 0),
			groupRec("g", "consumer", 1, -1, nil), // version 1: no CurrentStateTimestamp
		},
		steps: []step{
			{at: ret, offsets: []string{"t/1"}, listed: true, tombstones: []string{"offset g t/0"}},
			{at: 500 + ret, listed: false, tombstones: []string{"group g", "offset g t/0", "offset g t/1"}},
		},
	}, {
		name:  "standalone commits expire one by one, no group tombstone",
		group: "s",
		recs:  []Record{commitRec("s", "t", 0, t0, 0), commitRec("s", "t", 2, t0+300, 0)},
		steps: []step{
			{at: ret - 1, offsets: []string{"t/0", "t/2"}, listed: true},
			{at: ret, offsets: []string{"t/2"}, listed: true, tombstones: []string{"offset s t/0"}},
			{at: 300 + ret, listed: false, tombstones: []string{"offset s t/0", "offset s t/2"}},
		},
	}, {
		name:  "a v2-4 retention time is the commit's own expire timestamp",
		group: "s",
		recs:  []Record{commitRec("s", "t", 0, t0, t0+200), commitRec("s", "t", 1, t0, t0+5000)},
		steps: []step{
			{at: 199, offsets: []string{"t/0", "t/1"}, listed: true},
			{at: 200, offsets: []string{"t/1"}, listed: true, tombstones: []string{"offset s t/0"}},
			{at: ret, offsets: []string{"t/1"}, listed: true, tombstones: []string{"offset s t/0"}},
			{at: 5000, listed: false, tombstones: []string{"offset s t/0", "offset s t/1"}},
		},
	}, {
		name:  "stable consumer group keeps subscribed topics, expires the others (KIP-211)",
		group: "c",
		recs: []Record{
			commitRec("c", "t", 0, t0, 0), commitRec("c", "u", 0, t0, 0), commitRec("c", "v", 1, t0, 0),
			groupRec("c", "consumer", 3, t0, map[string][]string{"m0": {"t"}, "m1": {"t", "v"}}),
		},
		steps: []step{
			{at: ret - 1, offsets: []string{"t/0", "u/0", "v/1"}, listed: true},
			{at: 100 * ret, offsets: []string{"t/0", "v/1"}, listed: true, tombstones: []string{"offset c u/0"}},
		},
	}, {
		name:  "stable group of another protocol type keeps everything",
		group: "k",
		recs: []Record{
			commitRec("k", "t", 0, t0, 0),
			groupRec("k", "connect", 3, t0, map[string][]string{"m0": nil}),
		},
		steps: []step{{at: 100 * ret, offsets: []string{"t/0"}, listed: true}},
	}, {
		name:  "empty group without offsets is deleted at the first pass",
		group: "e",
		recs:  []Record{groupRec("e", "consumer", 3, t0, nil)},
		steps: []step{{at: 0, listed: false, tombstones: []string{"group e"}}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			log := &memLog{}
			c := expiryCoordinator(log, ret*time.Millisecond, tc.recs...)
			defer c.Close()
			log.recs = nil // keep only what expiry writes
			id := tc.group
			for _, s := range tc.steps {
				expireAt(c, t0+s.at)
				if got := offsetsOf(c, id); !equal(got, s.offsets) {
					t.Errorf("at +%dms: offsets %v, want %v", s.at, got, s.offsets)
				}
				if got := listed(c, id); got != s.listed {
					t.Errorf("at +%dms: group listed %v, want %v", s.at, got, s.listed)
				}
				if got := tombstones(log); !equal(got, s.tombstones) {
					t.Errorf("at +%dms: tombstones %v, want %v", s.at, got, s.tombstones)
				}
			}
		})
	}
}
