package group

import (
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// memLog keeps the coordinator's records in memory, in order.
type memLog struct {
	mu   sync.Mutex
	recs []Record
}

func (l *memLog) AppendTxn(group string, _ int64, _ int16, recs []Record) <-chan error {
	return l.Append(group, recs)
}

func (l *memLog) Append(_ string, recs []Record) <-chan error {
	l.mu.Lock()
	l.recs = append(l.recs, recs...)
	l.mu.Unlock()
	ch := make(chan error, 1)
	ch <- nil
	return ch
}

func testCoordinator(log *memLog, delay time.Duration) *Coordinator {
	return New(Config{
		Log: log, InitialRebalanceDelay: delay, MinSessionTimeout: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Partitions: func(topic string) int32 {
			if topic == "t" {
				return 3
			}
			return -1
		},
	})
}

func joinReq(group, member string, instance *string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group, req.MemberID, req.InstanceID = group, member, instance
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 30_000, 2_000
	req.ProtocolType = "connect"
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "sessioned", Metadata: []byte("m-" + member)}, {Name: "eager", Metadata: []byte("e")}}
	return req
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no answer to %s", what)
		panic("unreachable")
	}
}

// TestLoadRebuildsState commits offsets and settles a group, then loads the
// written records into a fresh coordinator: the group, its members'
// assignments and the offsets are back; tombstones remove what they name.
func TestLoadRebuildsState(t *testing.T) {
	log := &memLog{}
	c := testCoordinator(log, 0)
	j := recv(t, c.JoinGroup(joinReq("g", "", kmsg.StringPtr("i1")), 9, "client", "/h"), "join")
	if j.ErrorCode != 0 || j.Generation != 1 || *j.Protocol != "sessioned" {
		t.Fatalf("join: %+v", j)
	}
	s := kmsg.NewPtrSyncGroupRequest()
	s.Group, s.MemberID, s.Generation = "g", j.MemberID, j.Generation
	s.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: j.MemberID, MemberAssignment: []byte("tasks")}}
	if r := recv(t, c.SyncGroup(s), "sync"); r.ErrorCode != 0 || string(r.MemberAssignment) != "tasks" {
		t.Fatalf("sync: %+v", r)
	}
	commit := func(group string, gen int32, member string, p int32, off int64) {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version = 9
		req.Group, req.Generation, req.MemberID = group, gen, member
		req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: p, Offset: off, LeaderEpoch: 3, Metadata: kmsg.StringPtr("md")}}}}
		resp, finish := c.CommitOffsets(req)
		finish()
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("commit %s/%d: %v", group, p, kerr.ErrorForCode(code))
		}
	}
	commit("g", j.Generation, j.MemberID, 0, 10)
	commit("g", j.Generation, j.MemberID, 0, 11)
	commit("simple", -1, "", 2, 99)
	commit("gone", -1, "", 1, 5)
	codes, finish := c.DeleteGroups([]string{"gone"})
	if finish(); codes[0] != 0 {
		t.Fatalf("delete: %v", kerr.ErrorForCode(codes[0]))
	}

	d := testCoordinator(&memLog{}, 0)
	for _, r := range log.recs {
		if err := d.Load(r.Key, r.Value); err != nil {
			t.Fatal(err)
		}
	}
	d.Loaded()
	defer d.Close()
	desc := d.DescribeGroup("g")
	if desc.State != "Stable" || desc.ProtocolType != "connect" || desc.Protocol != "sessioned" || len(desc.Members) != 1 ||
		string(desc.Members[0].MemberAssignment) != "tasks" || *desc.Members[0].InstanceID != "i1" {
		t.Errorf("reloaded group: %+v", desc)
	}
	got, _ := d.FetchOffsets("g", nil, false)
	if len(got) != 1 || got[0].Partitions[0].Offset != 11 || got[0].Partitions[0].LeaderEpoch != 3 || *got[0].Partitions[0].Metadata != "md" {
		t.Errorf("reloaded offsets of g: %+v", got)
	}
	if got, _ := d.FetchOffsets("simple", nil, false); len(got) != 1 || got[0].Partitions[0].Offset != 99 {
		t.Errorf("reloaded offsets of simple: %+v", got)
	}
	if desc := d.DescribeGroup("gone"); desc.State != "Dead" {
		t.Errorf("deleted group reloaded as %s", desc.State)
	}
	// The reloaded member goes on heartbeating in its generation.
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "g", j.MemberID, j.Generation
	if code := d.Heartbeat(hb); code != 0 {
		t.Errorf("heartbeat after reload: %v", kerr.ErrorForCode(code))
	}
	c.Close()
}

// TestInitialDelayAndRebalanceTimeout: the first rebalance waits for the
// initial delay and takes every member that came meanwhile; a later
// rebalance drops a member that does not rejoin within the timeout.
func TestInitialDelayAndRebalanceTimeout(t *testing.T) {
	c := testCoordinator(&memLog{}, 300*time.Millisecond)
	defer c.Close()
	start := time.Now()
	a := c.JoinGroup(joinReq("g", "", kmsg.StringPtr("a")), 9, "a", "/h")
	b := c.JoinGroup(joinReq("g", "", kmsg.StringPtr("b")), 9, "b", "/h")
	ja, jb := recv(t, a, "join a"), recv(t, b, "join b")
	if time.Since(start) < 250*time.Millisecond {
		t.Errorf("join answered after %v, before the initial delay", time.Since(start))
	}
	if ja.Generation != 1 || jb.Generation != 1 || ja.LeaderID != ja.MemberID || len(ja.Members) != 2 || len(jb.Members) != 0 {
		t.Fatalf("joins: %+v / %+v", ja, jb)
	}
	// b's instance id in a rebalance started by a's rejoin with new
	// metadata: b never rejoins, so after the rebalance timeout (2 s) the
	// group goes on with a alone.
	req := joinReq("g", ja.MemberID, kmsg.StringPtr("a"))
	req.Protocols[0].Metadata = []byte("changed")
	again := recv(t, c.JoinGroup(req, 9, "a", "/h"), "rejoin")
	if again.ErrorCode != 0 || again.Generation != 2 || len(again.Members) != 1 {
		t.Fatalf("rejoin after the timeout: %+v", again)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation, hb.InstanceID = "g", jb.MemberID, 1, kmsg.StringPtr("b")
	if code := c.Heartbeat(hb); code != kerr.UnknownMemberID.Code {
		t.Errorf("heartbeat of the dropped member: %v", kerr.ErrorForCode(code))
	}
	// A different protocol type cannot join.
	other := joinReq("g", "", nil)
	other.ProtocolType = "consumer"
	if r := recv(t, c.JoinGroup(other, 3, "x", "/h"), "foreign join"); r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Errorf("foreign protocol type: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

// TestSyncTimeout: a member that joins but never sends SyncGroup is
// dropped after the rebalance timeout and the others rebalance without it.
func TestSyncTimeout(t *testing.T) {
	c := testCoordinator(&memLog{}, 0)
	defer c.Close()
	reqA := joinReq("g", "", kmsg.StringPtr("a"))
	reqA.RebalanceTimeoutMillis = 300
	ja := recv(t, c.JoinGroup(reqA, 9, "a", "/h"), "join a")
	// b joins: a rejoins, then only b syncs; a (the leader) never does.
	reqB := joinReq("g", "", kmsg.StringPtr("b"))
	reqB.RebalanceTimeoutMillis = 300
	bch := c.JoinGroup(reqB, 9, "b", "/h")
	reqA.MemberID = ja.MemberID
	recv(t, c.JoinGroup(reqA, 9, "a", "/h"), "rejoin a")
	jb := recv(t, bch, "join b")
	s := kmsg.NewPtrSyncGroupRequest()
	s.Group, s.MemberID, s.Generation = "g", jb.MemberID, jb.Generation
	if r := recv(t, c.SyncGroup(s), "sync b"); r.ErrorCode != kerr.RebalanceInProgress.Code {
		t.Fatalf("sync of b while the leader is gone: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	reqB.MemberID = jb.MemberID
	again := recv(t, c.JoinGroup(reqB, 9, "b", "/h"), "rejoin b")
	if again.ErrorCode != 0 || again.LeaderID != jb.MemberID || len(again.Members) != 1 {
		t.Fatalf("b alone after the sync timeout: %+v", again)
	}
}
