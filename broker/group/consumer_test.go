package group

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var (
	idA = [16]byte{1}
	idB = [16]byte{2}
)

// consumerCoordinator has topics "a" (6 partitions) and "b" (2).
func consumerCoordinator(log *memLog, session time.Duration) *Coordinator {
	return New(Config{
		Log: log, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		ConsumerSessionTimeout: session, ConsumerHeartbeatInterval: 100 * time.Millisecond,
		Partitions:    func(string) int32 { return 6 },
		TopicsVersion: func() uint64 { return 1 },
		Topics: func() []TopicInfo {
			return []TopicInfo{{Name: "a", ID: idA, Partitions: 6}, {Name: "b", ID: idB, Partitions: 2}}
		},
	})
}

// cmemberClient plays a KIP-848 member: it owns what it was last given.
type cmemberClient struct {
	id    string
	epoch int32
	owned partSet
}

func (m *cmemberClient) request(topics ...string) *kmsg.ConsumerGroupHeartbeatRequest {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	req.Group, req.MemberID, req.MemberEpoch = "g", m.id, m.epoch
	req.RebalanceTimeoutMillis = 60_000
	if m.epoch == 0 {
		req.SubscribedTopicNames = topics
	} else {
		req.RebalanceTimeoutMillis = -1
	}
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	for _, t := range m.owned.byTopic() {
		req.Topics = append(req.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: t.id, Partitions: t.parts})
	}
	return req
}

// beat sends one heartbeat and adopts the answer, as a client would.
func (m *cmemberClient) beat(t *testing.T, c *Coordinator, req *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	t.Helper()
	resp, finish := c.ConsumerHeartbeat(req, "client", "/127.0.0.1")
	finish()
	if resp.ErrorCode != 0 {
		return resp
	}
	m.epoch = resp.MemberEpoch
	if resp.Assignment != nil {
		m.owned = partSet{}
		for _, at := range resp.Assignment.Topics {
			for _, p := range at.Partitions {
				m.owned[tp{at.TopicID, p}] = 0
			}
		}
	}
	return resp
}

// checkOwnership fails when a partition is held by two members of g.
func checkOwnership(t *testing.T, c *Coordinator, members ...*cmemberClient) {
	t.Helper()
	held := map[tp]string{}
	for _, m := range members {
		for p := range m.owned {
			if o, dup := held[p]; dup {
				t.Fatalf("partition %v owned by %s and %s", p, o, m.id)
			}
			held[p] = m.id
		}
	}
}

func TestConsumerRevokesBeforeAssigning(t *testing.T) {
	c := consumerCoordinator(&memLog{}, time.Minute)
	defer c.Close()
	a := &cmemberClient{id: "A"}
	a.beat(t, c, a.request("a"))
	if len(a.owned) != 6 || a.epoch != 1 {
		t.Fatalf("first member: owns %d at epoch %d, want 6 at 1", len(a.owned), a.epoch)
	}
	b := &cmemberClient{id: "B"}
	b.beat(t, c, b.request("a"))
	if len(b.owned) != 0 || b.epoch != 2 {
		t.Fatalf("second member before A revoked: owns %v at epoch %d, want nothing at 2", b.owned, b.epoch)
	}
	// A keepalive (no owned partitions reported) learns what to give up
	// but cannot complete the revocation.
	keep := a.request()
	keep.Topics = nil
	a.beat(t, c, keep)
	if len(a.owned) != 3 || a.epoch != 1 {
		t.Fatalf("A after the rebalance: owns %d at epoch %d, want 3 at 1 (revoking)", len(a.owned), a.epoch)
	}
	checkOwnership(t, c, a, b)
	b.beat(t, c, b.request())
	if len(b.owned) != 0 {
		t.Fatalf("B got %v while A had not acknowledged the revocation", b.owned)
	}
	a.beat(t, c, a.request()) // reports the 3 it kept: revocation done
	if a.epoch != 2 {
		t.Fatalf("A epoch after revoking = %d, want 2", a.epoch)
	}
	b.beat(t, c, b.request())
	if len(b.owned) != 3 {
		t.Fatalf("B owns %d after A revoked, want 3", len(b.owned))
	}
	checkOwnership(t, c, a, b)
	d := c.DescribeConsumerGroup("g")
	if d.State != "Stable" || d.Epoch != 2 || d.AssignmentEpoch != 2 || d.AssignorName != "uniform" || len(d.Members) != 2 {
		t.Fatalf("describe = %s epoch %d/%d %s %d members", d.State, d.Epoch, d.AssignmentEpoch, d.AssignorName, len(d.Members))
	}
}

func TestConsumerFencing(t *testing.T) {
	c := consumerCoordinator(&memLog{}, time.Minute)
	defer c.Close()
	a := &cmemberClient{id: "A"}
	a.beat(t, c, a.request("a"))
	cases := []struct {
		name  string
		req   func() *kmsg.ConsumerGroupHeartbeatRequest
		code  int16
		epoch int32
	}{
		{"epoch ahead", func() *kmsg.ConsumerGroupHeartbeatRequest { r := a.request(); r.MemberEpoch = 5; return r }, kerr.FencedMemberEpoch.Code, -1},
		{"previous epoch, owned a subset", func() *kmsg.ConsumerGroupHeartbeatRequest {
			r := a.request()
			r.MemberEpoch = 0
			r.RebalanceTimeoutMillis = 1000
			r.SubscribedTopicNames = []string{"a"}
			r.Topics = r.Topics[:0]
			return r
		}, 0, 1},
		{"unknown member", func() *kmsg.ConsumerGroupHeartbeatRequest { r := a.request(); r.MemberID = "Z"; return r }, kerr.UnknownMemberID.Code, -1},
		{"bad assignor", func() *kmsg.ConsumerGroupHeartbeatRequest {
			r := a.request()
			s := "nope"
			r.ServerAssignor = &s
			return r
		}, kerr.UnsupportedAssignor.Code, -1},
		{"bad regex", func() *kmsg.ConsumerGroupHeartbeatRequest {
			r := a.request()
			s := "a("
			r.SubscribedTopicRegex = &s
			return r
		}, kerr.InvalidRegularExpression.Code, -1},
		{"joining with owned partitions", func() *kmsg.ConsumerGroupHeartbeatRequest {
			r := (&cmemberClient{id: "N", owned: partSet{{idA, 0}: 0}}).request("a")
			return r
		}, kerr.InvalidRequest.Code, -1},
		{"v1 without member id", func() *kmsg.ConsumerGroupHeartbeatRequest { r := (&cmemberClient{}).request("a"); return r }, kerr.InvalidRequest.Code, -1},
	}
	for _, tc := range cases {
		resp, finish := c.ConsumerHeartbeat(tc.req(), "c", "h")
		finish()
		if resp.ErrorCode != tc.code || resp.MemberEpoch != tc.epoch {
			t.Errorf("%s: code %d epoch %d, want %d epoch %d", tc.name, resp.ErrorCode, resp.MemberEpoch, tc.code, tc.epoch)
		}
	}
	// The rejoin at epoch 0 re-admitted A in place, with its partitions.
	d := c.DescribeConsumerGroup("g")
	if len(d.Members) != 1 || len(d.Members[0].Assignment.TopicPartitions) != 1 || len(d.Members[0].Assignment.TopicPartitions[0].Partitions) != 6 {
		t.Fatalf("after the rejoin: %+v", d.Members)
	}
}

func TestConsumerCommitEpochs(t *testing.T) {
	c := consumerCoordinator(&memLog{}, time.Minute)
	defer c.Close()
	a := &cmemberClient{id: "A"}
	a.beat(t, c, a.request("a")) // epoch 1, owns a/0-5
	b := &cmemberClient{id: "B"}
	b.beat(t, c, b.request("a"))
	a.beat(t, c, a.request()) // revoke: keeps 3 at epoch 1
	a.beat(t, c, a.request()) // done: epoch 2
	commit := func(epoch int32, part int32) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version, req.Group, req.MemberID, req.Generation = 9, "g", "A", epoch
		if epoch < 0 {
			req.MemberID = ""
		}
		req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "a", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: part, Offset: 10}}}}
		resp, finish := c.CommitOffsets(req)
		finish()
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	var kept, lost int32 = -1, -1
	for p := int32(0); p < 6; p++ {
		if _, ok := a.owned[tp{idA, p}]; ok {
			kept = p
		} else {
			lost = p
		}
	}
	if code := commit(2, kept); code != 0 {
		t.Errorf("commit at the current epoch: %v", kerr.ErrorForCode(code))
	}
	if code := commit(1, kept); code != 0 {
		t.Errorf("commit at the previous epoch of a partition held since then: %v", kerr.ErrorForCode(code))
	}
	if code := commit(1, lost); code != kerr.StaleMemberEpoch.Code {
		t.Errorf("commit at the previous epoch of a revoked partition: %v, want STALE_MEMBER_EPOCH", kerr.ErrorForCode(code))
	}
	if code := commit(3, kept); code != kerr.StaleMemberEpoch.Code {
		t.Errorf("commit at a future epoch: %v, want STALE_MEMBER_EPOCH", kerr.ErrorForCode(code))
	}
	if code := commit(-1, kept); code != kerr.UnknownMemberID.Code {
		t.Errorf("admin commit to a group with members: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(code))
	}
}

func TestConsumerSessionExpiry(t *testing.T) {
	c := consumerCoordinator(&memLog{}, 150*time.Millisecond)
	defer c.Close()
	a := &cmemberClient{id: "A"}
	a.beat(t, c, a.request("a"))
	b := &cmemberClient{id: "B"}
	b.beat(t, c, b.request("a"))
	// A never heartbeats again: once its session ends B gets everything.
	deadline := time.Now().Add(5 * time.Second)
	for len(b.owned) != 6 {
		if time.Now().After(deadline) {
			t.Fatalf("B owns %d partitions after A's session ended, want 6", len(b.owned))
		}
		time.Sleep(50 * time.Millisecond)
		b.beat(t, c, b.request())
	}
	if d := c.DescribeConsumerGroup("g"); len(d.Members) != 1 {
		t.Fatalf("members after expiry: %d", len(d.Members))
	}
}

func TestConsumerStateReloads(t *testing.T) {
	log := &memLog{}
	c := consumerCoordinator(log, time.Minute)
	a := &cmemberClient{id: "A"}
	a.beat(t, c, a.request("a", "b"))
	b := &cmemberClient{id: "B"}
	b.beat(t, c, b.request("a"))
	a.beat(t, c, a.request())
	before := c.DescribeConsumerGroup("g")
	c.Close()

	c2 := consumerCoordinator(&memLog{}, time.Minute)
	defer c2.Close()
	for _, r := range log.recs {
		if err := c2.Load(r.Key, r.Value); err != nil {
			t.Fatal(err)
		}
	}
	c2.Loaded()
	after := c2.DescribeConsumerGroup("g")
	if b, a := describeString(before), describeString(after); a != b {
		t.Fatalf("reloaded group differs:\nbefore %s\nafter  %s", b, a)
	}
	// The members carry on with their epochs.
	if resp := a.beat(t, c2, a.request()); resp.ErrorCode != 0 {
		t.Fatalf("heartbeat after reload: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	if resp := b.beat(t, c2, b.request()); resp.ErrorCode != 0 || len(b.owned) == 0 {
		t.Fatalf("B after reload: %v, owns %v", kerr.ErrorForCode(resp.ErrorCode), b.owned)
	}
	checkOwnership(t, c2, a, b)
}

func describeString(d kmsg.ConsumerGroupDescribeResponseGroup) string {
	s := fmt.Sprintf("%s %d/%d %s", d.State, d.Epoch, d.AssignmentEpoch, d.AssignorName)
	for _, m := range d.Members {
		s += fmt.Sprintf(" [%s e%d %v", m.MemberID, m.MemberEpoch, m.SubscribedTopics)
		for _, a := range []kmsg.Assignment{m.Assignment, m.TargetAssignment} {
			for _, tp := range a.TopicPartitions {
				s += fmt.Sprintf(" %s:%v", tp.Topic, tp.Partitions)
			}
			s += " |"
		}
		s += "]"
	}
	return s
}

func TestConsumerGroupDeleteAndOffsets(t *testing.T) {
	log := &memLog{}
	c := consumerCoordinator(log, time.Minute)
	defer c.Close()
	a := &cmemberClient{id: "A"}
	a.beat(t, c, a.request("a"))
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Version, commit.Group, commit.MemberID, commit.Generation = 9, "g", "A", a.epoch
	commit.Topics = []kmsg.OffsetCommitRequestTopic{
		{Topic: "a", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 5}}},
		{Topic: "b", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 7}}},
	}
	_, finish := c.CommitOffsets(commit)
	finish()
	code, topics, finish := c.DeleteOffsets("g", []kmsg.OffsetDeleteRequestTopic{
		{Topic: "a", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}},
		{Topic: "b", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}},
	})
	finish()
	if code != 0 || topics[0].Partitions[0].ErrorCode != kerr.GroupSubscribedToTopic.Code || topics[1].Partitions[0].ErrorCode != 0 {
		t.Fatalf("offset delete: group %d, a %d, b %d; want a GROUP_SUBSCRIBED_TO_TOPIC, b deleted", code, topics[0].Partitions[0].ErrorCode, topics[1].Partitions[0].ErrorCode)
	}
	codes, finish := c.DeleteGroups([]string{"g"})
	finish()
	if codes[0] != kerr.NonEmptyGroup.Code {
		t.Fatalf("delete of a group with members: %d, want NON_EMPTY_GROUP", codes[0])
	}
	leave := a.request()
	leave.MemberEpoch = -1
	if resp := a.beat(t, c, leave); resp.ErrorCode != 0 || resp.MemberEpoch != -1 {
		t.Fatalf("leave: %d epoch %d", resp.ErrorCode, resp.MemberEpoch)
	}
	if groups := c.ListGroups([]string{"empty"}, []string{"CONSUMER"}); len(groups) != 1 {
		t.Fatalf("empty consumer groups: %+v", groups)
	}
	codes, finish = c.DeleteGroups([]string{"g"})
	finish()
	if codes[0] != 0 {
		t.Fatalf("delete of the empty group: %d", codes[0])
	}
	c2 := consumerCoordinator(&memLog{}, time.Minute)
	defer c2.Close()
	for _, r := range log.recs {
		if err := c2.Load(r.Key, r.Value); err != nil {
			t.Fatal(err)
		}
	}
	c2.Loaded()
	if groups := c2.ListGroups(nil, nil); len(groups) != 0 {
		t.Fatalf("groups after replaying the delete: %+v", groups)
	}
}

func TestConsumerStaticMembership(t *testing.T) {
	log := &memLog{}
	c := consumerCoordinator(log, time.Minute)
	defer c.Close()
	inst := "instance-1"
	a := &cmemberClient{id: "A"}
	join := a.request("a")
	join.InstanceID = &inst
	a.beat(t, c, join)
	if len(a.owned) != 6 {
		t.Fatalf("static member owns %d, want 6", len(a.owned))
	}
	// Another process with the same instance id while A is alive.
	dup := &cmemberClient{id: "A2"}
	req := dup.request("a")
	req.InstanceID = &inst
	if resp := dup.beat(t, c, req); resp.ErrorCode != kerr.UnreleasedInstanceID.Code {
		t.Fatalf("second member with a live instance id: %d, want UNRELEASED_INSTANCE_ID", resp.ErrorCode)
	}
	// A leaves for a restart (-2): it keeps its partitions, nobody else
	// may take them, and its replacement inherits them without a new
	// group epoch.
	leave := a.request()
	leave.MemberEpoch, leave.InstanceID = -2, &inst
	if resp := a.beat(t, c, leave); resp.ErrorCode != 0 || resp.MemberEpoch != -2 {
		t.Fatalf("static leave: %d epoch %d", resp.ErrorCode, resp.MemberEpoch)
	}
	epoch := c.DescribeConsumerGroup("g").Epoch
	back := &cmemberClient{id: "A-restarted"}
	req = back.request("a")
	req.InstanceID = &inst
	if resp := back.beat(t, c, req); resp.ErrorCode != 0 || len(back.owned) != 6 {
		t.Fatalf("static rejoin: %d, owns %d", resp.ErrorCode, len(back.owned))
	}
	d := c.DescribeConsumerGroup("g")
	if d.Epoch != epoch || len(d.Members) != 1 || d.Members[0].MemberID != "A-restarted" {
		t.Fatalf("after the static rejoin: epoch %d (was %d), members %+v", d.Epoch, epoch, d.Members)
	}
	a.epoch = epoch // the old process, still running with its last epoch
	if resp := a.beat(t, c, a.request()); resp.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("the replaced member id heartbeating: %d, want UNKNOWN_MEMBER_ID", resp.ErrorCode)
	}
	// The replacement is in the log: a reloaded coordinator knows it.
	c2 := consumerCoordinator(&memLog{}, time.Minute)
	defer c2.Close()
	for _, r := range log.recs {
		if err := c2.Load(r.Key, r.Value); err != nil {
			t.Fatal(err)
		}
	}
	c2.Loaded()
	if resp := back.beat(t, c2, back.request()); resp.ErrorCode != 0 || len(back.owned) != 6 {
		t.Fatalf("the rejoined static member after a reload: %d, owns %d", resp.ErrorCode, len(back.owned))
	}
}

func TestConsumerRebalanceTimeout(t *testing.T) {
	c := consumerCoordinator(&memLog{}, time.Minute)
	defer c.Close()
	a := &cmemberClient{id: "A"}
	join := a.request("a")
	join.RebalanceTimeoutMillis = 100
	a.beat(t, c, join)
	b := &cmemberClient{id: "B"}
	b.beat(t, c, b.request("a"))
	keep := a.request()
	keep.Topics = nil
	a.beat(t, c, keep) // A learns it must revoke, and never confirms
	deadline := time.Now().Add(5 * time.Second)
	for len(b.owned) != 6 {
		if time.Now().After(deadline) {
			t.Fatalf("B owns %d after A overran its rebalance timeout, want 6", len(b.owned))
		}
		time.Sleep(20 * time.Millisecond)
		b.beat(t, c, b.request())
	}
	if resp := a.beat(t, c, a.request()); resp.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("fenced member heartbeating: %d, want UNKNOWN_MEMBER_ID", resp.ErrorCode)
	}
}

// group.consumer.max.size refuses members beyond it; a refused request
// leaves no group behind.
func TestConsumerMaxSize(t *testing.T) {
	c := New(Config{
		Log: &memLog{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ConsumerMaxSize: 1,
		TopicsVersion: func() uint64 { return 1 },
		Topics:        func() []TopicInfo { return []TopicInfo{{Name: "a", ID: idA, Partitions: 6}} },
	})
	defer c.Close()
	a := &cmemberClient{id: "A"}
	a.beat(t, c, a.request("a"))
	b := &cmemberClient{id: "B"}
	if resp := b.beat(t, c, b.request("a")); resp.ErrorCode != kerr.GroupMaxSizeReached.Code {
		t.Fatalf("second member of a group of at most 1: %d, want GROUP_MAX_SIZE_REACHED", resp.ErrorCode)
	}
	req := (&cmemberClient{id: "X"}).request("a")
	req.Group = "other"
	s := "bogus"
	req.ServerAssignor = &s
	resp, finish := c.ConsumerHeartbeat(req, "c", "h")
	finish()
	if resp.ErrorCode != kerr.UnsupportedAssignor.Code {
		t.Fatalf("bad assignor: %d", resp.ErrorCode)
	}
	if gs := c.ListGroups(nil, nil); len(gs) != 1 || gs[0].Group != "g" {
		t.Fatalf("groups after refused joins: %+v", gs)
	}
}
