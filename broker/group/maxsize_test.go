package group

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func maxSizeCoordinator(limit int, delay time.Duration) *Coordinator {
	return New(Config{
		Log: &memLog{}, MaxSize: limit, InitialRebalanceDelay: delay, MinSessionTimeout: time.Millisecond,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Partitions: func(string) int32 { return 3 },
	})
}

func wantFull(t *testing.T, r *kmsg.JoinGroupResponse, what string) {
	t.Helper()
	if r.ErrorCode != kerr.GroupMaxSizeReached.Code || r.MemberID != "" {
		t.Errorf("%s: %v, member %q; want GROUP_MAX_SIZE_REACHED without a member id", what, kerr.ErrorForCode(r.ErrorCode), r.MemberID)
	}
}

// TestMaxSizeRefusesJoins: with group.max.size 2, a third member is
// refused while two wait in the first rebalance, while the leader assigns,
// and once the group is stable (also at the v4+ first step, before any
// member id is handed out); a static member coming back under its
// instance id still gets in.
func TestMaxSizeRefusesJoins(t *testing.T) {
	c := maxSizeCoordinator(2, 200*time.Millisecond)
	defer c.Close()
	a := c.JoinGroup(joinReq("g", "", kmsg.StringPtr("a")), 5, "a", "/h")
	b := c.JoinGroup(joinReq("g", "", kmsg.StringPtr("b")), 5, "b", "/h")
	wantFull(t, recv(t, c.JoinGroup(joinReq("g", "", nil), 3, "c", "/h"), "join c while a and b wait"), "join c while a and b wait")
	ja, jb := recv(t, a, "join a"), recv(t, b, "join b")
	if ja.ErrorCode != 0 || jb.ErrorCode != 0 || len(ja.Members) != 2 {
		t.Fatalf("joins: %+v / %+v", ja, jb)
	}
	wantFull(t, recv(t, c.JoinGroup(joinReq("g", "", nil), 3, "d", "/h"), "join d"), "join d while the leader assigns")
	s := kmsg.NewPtrSyncGroupRequest()
	s.Group, s.MemberID, s.Generation = "g", ja.MemberID, ja.Generation
	if r := recv(t, c.SyncGroup(s), "sync"); r.ErrorCode != 0 {
		t.Fatalf("sync: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	wantFull(t, recv(t, c.JoinGroup(joinReq("g", "", nil), 9, "e", "/h"), "join e"), "join e (v9) into the stable group")
	if n := len(c.DescribeGroup("g").Members); n != 2 {
		t.Errorf("%d members after refused joins, want 2", n)
	}
	r := recv(t, c.JoinGroup(joinReq("g", "", kmsg.StringPtr("b")), 5, "b", "/h"), "static rejoin of b")
	if r.ErrorCode != 0 || r.MemberID == "" || r.MemberID == jb.MemberID {
		t.Errorf("static member b coming back: %v, member %q", kerr.ErrorForCode(r.ErrorCode), r.MemberID)
	}
}

func consumerJoin(group, member string) *kmsg.JoinGroupRequest {
	sub := kmsg.NewConsumerMemberMetadata()
	sub.Topics = []string{"t"}
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group, req.MemberID, req.ProtocolType = group, member, "consumer"
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 30_000, 30_000
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: sub.AppendTo(nil)}}
	return req
}

// TestMaxSizeShedsLoadedGroup: a group loaded with three members under a
// limit of two rebalances at once; the two first to rejoin stay, the last
// is refused and removed, and the rebalance ends without waiting for it.
func TestMaxSizeShedsLoadedGroup(t *testing.T) {
	c := maxSizeCoordinator(2, 0)
	defer c.Close()
	rec := groupRec("g", "consumer", 3, time.Now().UnixMilli(), map[string][]string{"m0": {"t"}, "m1": {"t"}, "m2": {"t"}})
	if err := c.Load(rec.Key, rec.Value); err != nil {
		t.Fatal(err)
	}
	c.Loaded()
	if st := c.DescribeGroup("g").State; st != "PreparingRebalance" {
		t.Fatalf("loaded group over the limit is %s, want PreparingRebalance", st)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "g", "m2", 4
	if code := c.Heartbeat(hb); code != kerr.RebalanceInProgress.Code {
		t.Errorf("heartbeat while shedding: %v", kerr.ErrorForCode(code))
	}
	j0 := c.JoinGroup(consumerJoin("g", "m0"), 9, "m0", "/h")
	j1 := c.JoinGroup(consumerJoin("g", "m1"), 9, "m1", "/h")
	wantFull(t, recv(t, c.JoinGroup(consumerJoin("g", "m2"), 9, "m2", "/h"), "rejoin m2"), "third rejoin")
	r0, r1 := recv(t, j0, "rejoin m0"), recv(t, j1, "rejoin m1")
	if r0.ErrorCode != 0 || r1.ErrorCode != 0 || r0.Generation != 5 || len(r0.Members)+len(r1.Members) != 2 {
		t.Fatalf("rejoins: %+v / %+v", r0, r1)
	}
	if d := c.DescribeGroup("g"); len(d.Members) != 2 || d.Members[0].MemberID != "m0" || d.Members[1].MemberID != "m1" {
		t.Errorf("members after shedding: %+v", d.Members)
	}
	hb.Generation = 5
	if code := c.Heartbeat(hb); code != kerr.UnknownMemberID.Code {
		t.Errorf("heartbeat of the removed member: %v", kerr.ErrorForCode(code))
	}
}
