package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker/group"
)

// startRoutingBroker starts a standalone broker with 4 partitions in each
// coordinator topic and a client of it that talks to it directly.
func startRoutingBroker(t *testing.T) (*Broker, *kgo.Broker) {
	t.Helper()
	b, err := New(Config{DataDir: t.TempDir(), KafkaAddr: "127.0.0.1:0", NodeID: 1,
		OffsetsTopicPartitions: 4, TxnTopicPartitions: 4, GroupInitialRebalanceDelay: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	go b.Serve()
	t.Cleanup(func() { b.Close() })
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return b, cl.SeedBrokers()[0]
}

// keysIn returns one key per partition of a 4-partition coordinator topic.
func keysIn(prefix string) [4]string {
	var out [4]string
	for i := 0; ; i++ {
		k := fmt.Sprintf("%s-%d", prefix, i)
		if p := groupPartition(k, 4); out[p] == "" {
			out[p] = k
		}
		if out[0] != "" && out[1] != "" && out[2] != "" && out[3] != "" {
			return out
		}
	}
}

func ask[R kmsg.Response](t *testing.T, br *kgo.Broker, req kmsg.Request) R {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := br.Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.(R)
}

func commitOffset(t *testing.T, br *kgo.Broker, group string, offset int64) int16 {
	t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation = group, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "routed"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return ask[*kmsg.OffsetCommitResponse](t, br, req).Topics[0].Partitions[0].ErrorCode
}

func fetchOffset(t *testing.T, br *kgo.Broker, group string) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest() // v8+ as kgo sends it: batched groups
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	rt := kmsg.NewOffsetFetchRequestGroupTopic()
	rt.Topic, rt.Partitions = "routed", []int32{0}
	rg.Topics = append(rg.Topics, rt)
	req.Groups = append(req.Groups, rg)
	g := ask[*kmsg.OffsetFetchResponse](t, br, req).Groups[0]
	if g.ErrorCode != 0 {
		return -1, g.ErrorCode
	}
	return g.Topics[0].Partitions[0].Offset, g.Topics[0].Partitions[0].ErrorCode
}

func findCoordinator(t *testing.T, br *kgo.Broker, typ int8, key string) {
	t.Helper()
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorType, req.CoordinatorKeys = typ, []string{key}
	resp := ask[*kmsg.FindCoordinatorResponse](t, br, req)
	if c := resp.Coordinators[0]; c.ErrorCode != 0 || c.NodeID != 1 {
		t.Fatalf("FindCoordinator(%q): node %d, %v", key, c.NodeID, kerr.ErrorForCode(c.ErrorCode))
	}
}

// TestGroupRouting: a group whose __consumer_offsets partition is not led
// here gets NOT_COORDINATOR (every group API, while the groups of other
// partitions carry on), one still loading COORDINATOR_LOAD_IN_PROGRESS; a
// coordinator unloaded answers its waiting joins NOT_COORDINATOR, and the
// one built when leadership comes back has the partition's offsets.
func TestGroupRouting(t *testing.T) {
	b, br := startRoutingBroker(t)
	groups := keysIn("group")
	findCoordinator(t, br, 0, groups[0])
	ct := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "routed", 1, 1
	ct.Topics = append(ct.Topics, rt)
	if code := ask[*kmsg.CreateTopicsResponse](t, br, ct).Topics[0].ErrorCode; code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	p := b.partition(offsetsTopic, 2)
	if p == nil {
		t.Fatal("__consumer_offsets-2 is not open")
	}
	epoch := p.role.Load().epoch
	for i, g := range groups {
		if code := commitOffset(t, br, g, int64(100+i)); code != 0 {
			t.Fatalf("commit for %s: %v", g, kerr.ErrorForCode(code))
		}
	}

	// A member waits in JoinGroup (the initial rebalance delay) when the
	// partition's leadership goes.
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.MemberID, join.ProtocolType = groups[2], "", "consumer"
	join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = 10_000, 10_000
	jp := kmsg.NewJoinGroupRequestProtocol()
	jp.Name, jp.Metadata = "range", []byte{0}
	join.Protocols = append(join.Protocols, jp)
	joined := make(chan *kmsg.JoinGroupResponse, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for {
			resp, err := br.Request(ctx, join)
			if err != nil {
				joined <- nil
				return
			}
			jr := resp.(*kmsg.JoinGroupResponse)
			if jr.ErrorCode != kerr.MemberIDRequired.Code {
				joined <- jr
				return
			}
			join.MemberID = jr.MemberID
		}
	}()
	time.Sleep(300 * time.Millisecond)
	b.coordinatorLeadership(p, false, epoch)
	select {
	case resp := <-joined:
		if resp == nil || resp.ErrorCode != kerr.NotCoordinator.Code {
			t.Fatalf("waiting JoinGroup after unload: %+v", resp)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("waiting JoinGroup not answered after unload")
	}

	// Every group API for groups[2] is NOT_COORDINATOR; the others go on.
	if code := commitOffset(t, br, groups[2], 7); code != kerr.NotCoordinator.Code {
		t.Errorf("OffsetCommit: %v", kerr.ErrorForCode(code))
	}
	if _, code := fetchOffset(t, br, groups[2]); code != kerr.NotCoordinator.Code {
		t.Errorf("OffsetFetch: %v", kerr.ErrorForCode(code))
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = groups[2], "m", 1
	if code := ask[*kmsg.HeartbeatResponse](t, br, hb).ErrorCode; code != kerr.NotCoordinator.Code {
		t.Errorf("Heartbeat: %v", kerr.ErrorForCode(code))
	}
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{groups[2], groups[1]}
	desc := ask[*kmsg.DescribeGroupsResponse](t, br, dg)
	if desc.Groups[0].ErrorCode != kerr.NotCoordinator.Code || desc.Groups[1].ErrorCode != 0 {
		t.Errorf("DescribeGroups: %v, %v", kerr.ErrorForCode(desc.Groups[0].ErrorCode), kerr.ErrorForCode(desc.Groups[1].ErrorCode))
	}
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{groups[2], groups[3]}
	delResp := ask[*kmsg.DeleteGroupsResponse](t, br, del)
	if delResp.Groups[0].ErrorCode != kerr.NotCoordinator.Code || delResp.Groups[1].ErrorCode != 0 {
		t.Errorf("DeleteGroups: %v, %v", kerr.ErrorForCode(delResp.Groups[0].ErrorCode), kerr.ErrorForCode(delResp.Groups[1].ErrorCode))
	}
	list := ask[*kmsg.ListGroupsResponse](t, br, kmsg.NewPtrListGroupsRequest())
	var listed []string
	for _, g := range list.Groups {
		listed = append(listed, g.Group)
	}
	if len(listed) != 2 {
		t.Errorf("ListGroups lists %v, want %s and %s", listed, groups[0], groups[1])
	}
	if off, code := fetchOffset(t, br, groups[1]); code != 0 || off != 101 {
		t.Errorf("OffsetFetch of %s: %d %v", groups[1], off, kerr.ErrorForCode(code))
	}

	// Loading: the partition's groups wait with COORDINATOR_LOAD_IN_PROGRESS.
	s := &groupShard{p: p}
	s.epoch.Store(epoch)
	s.c = group.New(b.groupConfig(s))
	s.loadMu.Lock()
	b.groups.mu.Lock()
	b.groups.shards[p.index] = s
	b.groups.mu.Unlock()
	if code := commitOffset(t, br, groups[2], 7); code != kerr.CoordinatorLoadInProgress.Code {
		t.Errorf("OffsetCommit while loading: %v", kerr.ErrorForCode(code))
	}
	b.groups.load(s)
	if off, code := fetchOffset(t, br, groups[2]); code != 0 || off != 102 {
		t.Errorf("OffsetFetch after the load: %d %v, want 102", off, kerr.ErrorForCode(code))
	}

	// Leadership lost and won again through the hook: the offsets come
	// back from the log.
	b.coordinatorLeadership(p, false, epoch)
	b.coordinatorLeadership(p, true, epoch)
	deadline := time.Now().Add(5 * time.Second)
	for {
		off, code := fetchOffset(t, br, groups[2])
		if code == 0 && off == 102 {
			break
		}
		if code != kerr.CoordinatorLoadInProgress.Code || time.Now().After(deadline) {
			t.Fatalf("OffsetFetch after leadership came back: %d %v", off, kerr.ErrorForCode(code))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTxnRouting: a transactional id whose __transaction_state partition is
// not led here gets NOT_COORDINATOR; when the leadership comes back the
// id's producer id and epoch are loaded from the log.
func TestTxnRouting(t *testing.T) {
	b, br := startRoutingBroker(t)
	ids := keysIn("txn")
	findCoordinator(t, br, 1, ids[0])
	initPID := func(id string) *kmsg.InitProducerIDResponse {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID, req.TransactionTimeoutMillis = &id, 10_000
		return ask[*kmsg.InitProducerIDResponse](t, br, req)
	}
	first := initPID(ids[1])
	if first.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(first.ErrorCode))
	}
	p := b.partition(txnTopic, 1)
	epoch := p.role.Load().epoch
	b.coordinatorLeadership(p, false, epoch)
	if got := initPID(ids[1]); got.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("InitProducerID after unload: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch = ids[1], first.ProducerID, first.ProducerEpoch
	if code := ask[*kmsg.EndTxnResponse](t, br, end).ErrorCode; code != kerr.NotCoordinator.Code {
		t.Errorf("EndTxn after unload: %v", kerr.ErrorForCode(code))
	}
	dt := kmsg.NewPtrDescribeTransactionsRequest()
	dt.TransactionalIDs = []string{ids[1]}
	if code := ask[*kmsg.DescribeTransactionsResponse](t, br, dt).TransactionStates[0].ErrorCode; code != kerr.NotCoordinator.Code {
		t.Errorf("DescribeTransactions after unload: %v", kerr.ErrorForCode(code))
	}
	if got := initPID(ids[2]); got.ErrorCode != 0 {
		t.Errorf("InitProducerID of another partition: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	b.coordinatorLeadership(p, true, epoch)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := initPID(ids[1])
		if got.ErrorCode == 0 {
			if got.ProducerID != first.ProducerID || got.ProducerEpoch != first.ProducerEpoch+1 {
				t.Errorf("after reload: producer %d epoch %d, want %d epoch %d", got.ProducerID, got.ProducerEpoch, first.ProducerID, first.ProducerEpoch+1)
			}
			break
		}
		if got.ErrorCode != kerr.CoordinatorLoadInProgress.Code || time.Now().After(deadline) {
			t.Fatalf("InitProducerID after reload: %v", kerr.ErrorForCode(got.ErrorCode))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWriteTxnMarkers: the handler appends the marker to a partition led
// here and answers UNKNOWN_TOPIC_OR_PARTITION for one it does not have.
func TestWriteTxnMarkers(t *testing.T) {
	b, br := startRoutingBroker(t)
	ct := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "marked", 2, 1
	ct.Topics = append(ct.Topics, rt)
	if code := ask[*kmsg.CreateTopicsResponse](t, br, ct).Topics[0].ErrorCode; code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed = 7, 0, true
	for _, topic := range []string{"marked", "missing"} {
		mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		mt.Topic, mt.Partitions = topic, []int32{1}
		m.Topics = append(m.Topics, mt)
	}
	req.Markers = append(req.Markers, m)
	resp := ask[*kmsg.WriteTxnMarkersResponse](t, br, req)
	if len(resp.Markers) != 1 || len(resp.Markers[0].Topics) != 2 {
		t.Fatalf("answer %+v", resp)
	}
	for i, want := range []int16{0, kerr.UnknownTopicOrPartition.Code} {
		rt := resp.Markers[0].Topics[i]
		if got := rt.Partitions[0].ErrorCode; got != want {
			t.Errorf("%s-1: %v, want %v", rt.Topic, kerr.ErrorForCode(got), kerr.ErrorForCode(want))
		}
	}
	if end := b.partition("marked", 1).log.EndOffset(); end != 1 {
		t.Errorf("marked-1 ends at %d, want 1 (the marker)", end)
	}
	if end := b.partition("marked", 0).log.EndOffset(); end != 0 {
		t.Errorf("marked-0 ends at %d, want 0", end)
	}
}
