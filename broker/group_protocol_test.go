package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker"
	"github.com/sluice-io/sluice/internal/suites"
	"github.com/sluice-io/sluice/internal/testbroker"
)

// The group protocol driven request by request with kmsg: the two-step
// join, fencing errors, static membership, bad commits, deletes, session
// expiry. kgo routes each request to the coordinator (FindCoordinator).

type rawGroup struct {
	t     *testing.T
	cl    *kgo.Client
	ctx   context.Context
	group string
}

func newRawGroup(t *testing.T, addr, group string) *rawGroup {
	_, cl := compatAdmin(t, addr)
	return &rawGroup{t: t, cl: cl, ctx: compatCtx(t, time.Minute), group: group}
}

func (g *rawGroup) join(memberID string, instance *string, session int32, topics ...string) *kmsg.JoinGroupResponse {
	g.t.Helper()
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group, req.MemberID, req.InstanceID = g.group, memberID, instance
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = session, 10_000
	req.ProtocolType = "consumer"
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = topics
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta.AppendTo(nil)}}
	resp, err := req.RequestWith(g.ctx, g.cl)
	if err != nil {
		g.t.Fatalf("join: %v", err)
	}
	return resp
}

func (g *rawGroup) sync(memberID string, gen int32, assign map[string][]byte) *kmsg.SyncGroupResponse {
	g.t.Helper()
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.MemberID, req.Generation = g.group, memberID, gen
	for id, a := range assign {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: a})
	}
	resp, err := req.RequestWith(g.ctx, g.cl)
	if err != nil {
		g.t.Fatalf("sync: %v", err)
	}
	return resp
}

func (g *rawGroup) heartbeat(memberID string, instance *string, gen int32) int16 {
	g.t.Helper()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.MemberID, req.InstanceID, req.Generation = g.group, memberID, instance, gen
	resp, err := req.RequestWith(g.ctx, g.cl)
	if err != nil {
		g.t.Fatalf("heartbeat: %v", err)
	}
	return resp.ErrorCode
}

func (g *rawGroup) commit(memberID string, gen int32, topic string, partition int32, offset int64) int16 {
	g.t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.MemberID, req.Generation = g.group, memberID, gen
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = partition, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(g.ctx, g.cl)
	if err != nil || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		g.t.Fatalf("commit: %+v %v", resp, err)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

func (g *rawGroup) fetched(topic string, partition int32) int64 {
	g.t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = g.group
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: []int32{partition}}}
	resp, err := req.RequestWith(g.ctx, g.cl)
	if err != nil {
		g.t.Fatalf("offset fetch: %v", err)
	}
	for _, gr := range resp.Groups {
		for _, rt := range gr.Topics {
			for _, rp := range rt.Partitions {
				return rp.Offset
			}
		}
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			return rp.Offset
		}
	}
	return -2
}

func (g *rawGroup) describe() kmsg.DescribeGroupsResponseGroup {
	g.t.Helper()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{g.group}
	resp, err := req.RequestWith(g.ctx, g.cl)
	if err != nil || len(resp.Groups) != 1 {
		g.t.Fatalf("describe: %+v %v", resp, err)
	}
	return resp.Groups[0]
}

func wantCode(t *testing.T, what string, got int16, want error) {
	t.Helper()
	var wantCode int16
	if want != nil {
		wantCode = want.(*kerr.Error).Code
	}
	if got != wantCode {
		t.Errorf("%s: %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

func TestGroupProtocolErrors(t *testing.T) {
	b := testbroker.Start(t)
	adm, _ := compatAdmin(t, b.Addr())
	compatCreateTopic(t, adm, "gp-topic", 2, nil)
	g := newRawGroup(t, b.Addr(), "gp")

	// Two-step join (v4+): MEMBER_ID_REQUIRED, then the join proper.
	first := g.join("", nil, 10_000, "gp-topic")
	wantCode(t, "first join", first.ErrorCode, kerr.MemberIDRequired)
	if first.MemberID == "" {
		t.Fatal("MEMBER_ID_REQUIRED without a member id")
	}
	joined := g.join(first.MemberID, nil, 10_000, "gp-topic")
	wantCode(t, "second join", joined.ErrorCode, nil)
	if joined.Generation != 1 || joined.LeaderID != first.MemberID || len(joined.Members) != 1 {
		t.Fatalf("join: generation %d leader %q members %d", joined.Generation, joined.LeaderID, len(joined.Members))
	}
	id, gen := joined.MemberID, joined.Generation
	synced := g.sync(id, gen, map[string][]byte{id: []byte("assignment")})
	wantCode(t, "sync", synced.ErrorCode, nil)
	if string(synced.MemberAssignment) != "assignment" {
		t.Errorf("sync assignment %q", synced.MemberAssignment)
	}
	if d := g.describe(); d.State != "Stable" || len(d.Members) != 1 || d.Protocol != "range" {
		t.Errorf("describe: %+v", d)
	}

	// Fencing.
	wantCode(t, "heartbeat", g.heartbeat(id, nil, gen), nil)
	wantCode(t, "heartbeat, stale generation", g.heartbeat(id, nil, gen-1), kerr.IllegalGeneration)
	wantCode(t, "heartbeat, unknown member", g.heartbeat("nobody", nil, gen), kerr.UnknownMemberID)
	wantCode(t, "sync, stale generation", g.sync(id, gen+1, nil).ErrorCode, kerr.IllegalGeneration)

	// Commits: good, stale, unknown member, unknown topic, simple commit to
	// a group with members; none of the refused ones changes anything.
	wantCode(t, "commit", g.commit(id, gen, "gp-topic", 0, 42), nil)
	wantCode(t, "commit, stale generation", g.commit(id, gen-1, "gp-topic", 0, 7), kerr.IllegalGeneration)
	wantCode(t, "commit, unknown member", g.commit("nobody", gen, "gp-topic", 0, 7), kerr.UnknownMemberID)
	wantCode(t, "commit, unknown topic", g.commit(id, gen, "no-such-topic", 0, 7), kerr.UnknownTopicOrPartition)
	wantCode(t, "commit, unknown partition", g.commit(id, gen, "gp-topic", 9, 7), kerr.UnknownTopicOrPartition)
	wantCode(t, "simple commit to a group with members", g.commit("", -1, "gp-topic", 0, 7), kerr.UnknownMemberID)
	big := kmsg.NewPtrOffsetCommitRequest()
	big.Group, big.MemberID, big.Generation = "gp", id, gen
	big.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "gp-topic", Partitions: []kmsg.OffsetCommitRequestTopicPartition{
		{Partition: 0, Offset: 9, Metadata: kmsg.StringPtr(string(make([]byte, 4097)))},
	}}}
	if resp, err := big.RequestWith(g.ctx, g.cl); err != nil {
		t.Fatal(err)
	} else {
		wantCode(t, "commit, oversized metadata", resp.Topics[0].Partitions[0].ErrorCode, kerr.OffsetMetadataTooLarge)
	}
	if got := g.fetched("gp-topic", 0); got != 42 {
		t.Errorf("committed offset %d, want 42", got)
	}
	if got := g.fetched("no-such-topic", 0); got != -1 {
		t.Errorf("offset of a refused commit: %d, want -1", got)
	}

	// Deletes refused while the group has members and subscribes.
	dg, err := adm.DeleteGroup(g.ctx, "gp")
	if err == nil {
		err = dg.Err
	}
	if err != kerr.NonEmptyGroup {
		t.Errorf("delete a group with members: %v", err)
	}
	od, err := adm.DeleteOffsets(g.ctx, "gp", kadm.TopicsSet{"gp-topic": {0: {}}})
	if oerr, _ := od.Lookup("gp-topic", 0); err != nil || oerr != kerr.GroupSubscribedToTopic {
		t.Errorf("delete subscribed offsets: %v %v", od, err)
	}

	// A second member makes the group rebalance: the first hears it in
	// its heartbeat.
	second := g.join("", nil, 10_000, "gp-topic")
	joinDone := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { joinDone <- g.join(second.MemberID, nil, 10_000, "gp-topic") }()
	suites.Wait(t, 10*time.Second, "a rebalance", func() bool { return g.describe().State == "PreparingRebalance" })
	wantCode(t, "heartbeat during rebalance", g.heartbeat(id, nil, gen), kerr.RebalanceInProgress)
	rejoined := g.join(id, nil, 10_000, "gp-topic")
	wantCode(t, "rejoin", rejoined.ErrorCode, nil)
	other := <-joinDone
	if rejoined.Generation != gen+1 || other.Generation != gen+1 || rejoined.LeaderID != id || len(rejoined.Members) != 2 || len(other.Members) != 0 {
		t.Fatalf("rebalance: leader %+v, follower %+v", rejoined, other)
	}
	gen = rejoined.Generation
	syncDone := make(chan *kmsg.SyncGroupResponse, 1)
	go func() { syncDone <- g.sync(other.MemberID, gen, nil) }()
	wantCode(t, "leader sync", g.sync(id, gen, map[string][]byte{id: []byte("a"), other.MemberID: []byte("b")}).ErrorCode, nil)
	if s := <-syncDone; s.ErrorCode != 0 || string(s.MemberAssignment) != "b" {
		t.Errorf("follower sync: %v %q", kerr.ErrorForCode(s.ErrorCode), s.MemberAssignment)
	}

	// LeaveGroup v3+ batch: one unknown, both members leave.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group = "gp"
	for _, m := range []string{id, "nobody", other.MemberID} {
		leave.Members = append(leave.Members, kmsg.LeaveGroupRequestMember{MemberID: m})
	}
	lr, err := leave.RequestWith(g.ctx, g.cl)
	if err != nil || lr.ErrorCode != 0 || len(lr.Members) != 3 ||
		lr.Members[0].ErrorCode != 0 || lr.Members[1].ErrorCode != kerr.UnknownMemberID.Code || lr.Members[2].ErrorCode != 0 {
		t.Fatalf("leave: %+v %v", lr, err)
	}
	suites.Wait(t, 10*time.Second, "an empty group", func() bool { return g.describe().State == "Empty" })

	// Empty now: offsets can go, then the group.
	od, err = adm.DeleteOffsets(g.ctx, "gp", kadm.TopicsSet{"gp-topic": {0: {}}})
	if oerr, found := od.Lookup("gp-topic", 0); err != nil || !found || oerr != nil {
		t.Errorf("delete offsets of an empty group: %v %v", od, err)
	}
	if got := g.fetched("gp-topic", 0); got != -1 {
		t.Errorf("offset after OffsetDelete: %d", got)
	}
	dg, err = adm.DeleteGroup(g.ctx, "gp")
	if err != nil || dg.Err != nil {
		t.Errorf("delete empty group: %v %v", dg, err)
	}
	if d := g.describe(); d.State != "Dead" {
		t.Errorf("deleted group described as %s", d.State)
	}
	dg, _ = adm.DeleteGroup(g.ctx, "gp")
	if dg.Err != kerr.GroupIDNotFound {
		t.Errorf("delete a deleted group: %v", dg.Err)
	}

	// Simple commits (generation -1) to a group without members work.
	s := newRawGroup(t, b.Addr(), "gp-simple")
	wantCode(t, "simple commit", s.commit("", -1, "gp-topic", 1, 5), nil)
	wantCode(t, "simple commit, unknown topic", s.commit("", -1, "nope", 0, 5), kerr.UnknownTopicOrPartition)
	if got := s.fetched("gp-topic", 1); got != 5 {
		t.Errorf("simple commit: fetched %d", got)
	}
	// Deleting the topic deletes its committed offsets.
	if _, err := adm.DeleteTopics(g.ctx, "gp-topic"); err != nil {
		t.Fatal(err)
	}
	compatCreateTopic(t, adm, "gp-topic", 2, nil)
	if got := s.fetched("gp-topic", 1); got != -1 {
		t.Errorf("offset of a deleted and re-created topic: %d", got)
	}
	wantCode(t, "commit with a generation to an unknown group", newRawGroup(t, b.Addr(), "gp-none").commit("m", 3, "gp-topic", 0, 1), kerr.IllegalGeneration)
}

func TestGroupStaticAndExpiry(t *testing.T) {
	b := testbroker.Start(t, func(c *broker.Config) { c.GroupMinSessionTimeout = 100 * time.Millisecond })
	g := newRawGroup(t, b.Addr(), "gs")
	inst := kmsg.StringPtr("instance-1")

	// Static members join without MEMBER_ID_REQUIRED.
	j := g.join("", inst, 30_000, "t")
	wantCode(t, "static join", j.ErrorCode, nil)
	wantCode(t, "static sync", g.sync(j.MemberID, j.Generation, map[string][]byte{j.MemberID: []byte("x")}).ErrorCode, nil)
	// The same instance coming back gets a new member id without a
	// rebalance; the old id is fenced.
	again := g.join("", inst, 30_000, "t")
	wantCode(t, "static rejoin", again.ErrorCode, nil)
	if again.MemberID == j.MemberID || again.Generation != j.Generation {
		t.Errorf("static rejoin: member %q generation %d (was %q, %d)", again.MemberID, again.Generation, j.MemberID, j.Generation)
	}
	wantCode(t, "fenced heartbeat", g.heartbeat(j.MemberID, inst, j.Generation), kerr.FencedInstanceID)
	wantCode(t, "heartbeat of the new id", g.heartbeat(again.MemberID, inst, j.Generation), nil)
	if d := g.describe(); d.State != "Stable" || len(d.Members) != 1 || string(d.Members[0].MemberAssignment) != "x" {
		t.Errorf("after static rejoin: %+v", d)
	}

	// A member that stops heartbeating is removed after its session.
	e := newRawGroup(t, b.Addr(), "ge")
	first := e.join("", nil, 300, "t")
	joined := e.join(first.MemberID, nil, 300, "t")
	wantCode(t, "join", joined.ErrorCode, nil)
	wantCode(t, "sync", e.sync(joined.MemberID, joined.Generation, nil).ErrorCode, nil)
	suites.Wait(t, 10*time.Second, "the session to expire", func() bool {
		d := e.describe()
		return d.State == "Empty" && len(d.Members) == 0
	})
	wantCode(t, "heartbeat after expiry", e.heartbeat(joined.MemberID, nil, joined.Generation), kerr.UnknownMemberID)

	// Session timeouts outside the broker's bounds are refused.
	wantCode(t, "session timeout too small", e.join("", nil, 10, "t").ErrorCode, kerr.InvalidSessionTimeout)
}
