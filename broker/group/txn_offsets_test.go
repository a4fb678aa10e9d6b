package group

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func txnCommit(t *testing.T, c *Coordinator, pid int64, offset int64) {
	t.Helper()
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Version, req.Group, req.ProducerID, req.ProducerEpoch, req.Generation = 3, "g", pid, 0, -1
	req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 1, Offset: offset}}}}
	resp, finish := c.CommitTxnOffsets(req)
	finish()
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("txn offset commit: %v", kerr.ErrorForCode(code))
	}
}

func fetchOne(c *Coordinator, stable bool) (int64, int16) {
	got, _ := c.FetchOffsets("g", []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{1}}}, stable)
	return got[0].Partitions[0].Offset, got[0].Partitions[0].ErrorCode
}

func TestTxnOffsetsVisibleOnlyAfterCommit(t *testing.T) {
	log := &memLog{}
	c := testCoordinator(log, time.Millisecond)
	defer c.Close()
	all := func(string) bool { return true }
	txnCommit(t, c, 7, 10)
	if off, code := fetchOne(c, false); off != -1 || code != 0 {
		t.Fatalf("before the marker: offset %d code %d, want -1", off, code)
	}
	if _, code := fetchOne(c, true); code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("require_stable before the marker: %d, want UNSTABLE_OFFSET_COMMIT", code)
	}
	c.CompleteTxn(7, true, all)
	if off, code := fetchOne(c, true); off != 10 || code != 0 {
		t.Fatalf("after the commit marker: offset %d code %d, want 10", off, code)
	}
	txnCommit(t, c, 7, 20)
	c.CompleteTxn(7, false, all)
	if off, _ := fetchOne(c, true); off != 10 {
		t.Fatalf("after an aborted transaction: offset %d, want 10", off)
	}
	// Replaying the log (records, then markers) gives the same result.
	c2 := testCoordinator(&memLog{}, time.Millisecond)
	defer c2.Close()
	markers := []bool{true, false}
	for _, r := range log.recs {
		if err := c2.LoadTxn(7, r.Key, r.Value); err != nil {
			t.Fatal(err)
		}
		c2.LoadMarker(7, markers[0], all)
		markers = markers[1:]
	}
	c2.Loaded()
	if off, _ := fetchOne(c2, true); off != 10 {
		t.Fatalf("after replay: offset %d, want 10", off)
	}
}
