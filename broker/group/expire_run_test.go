package group

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func simpleCommit(group string, version int16, retention int64, p int32) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.Generation, req.RetentionTimeMillis = version, group, -1, retention
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: p, Offset: 42}}}}
	return req
}

// TestExpiryTimerAndReload: the timer expires standalone commits and
// deletes their group; a commit still on its way to the log is left alone
// until it is durable; the tombstones hold when the log is loaded again,
// and a v2-4 retention time survives the reload.
func TestExpiryTimerAndReload(t *testing.T) {
	log := &memLog{}
	c := New(Config{
		Log: log, OffsetsRetention: 100 * time.Millisecond, OffsetsRetentionCheckInterval: 10 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Partitions: func(string) int32 { return 3 },
	})
	defer c.Close()
	c.Loaded()
	resp, finish := c.CommitOffsets(simpleCommit("gone", 9, 0, 0))
	finish()
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	// In flight: appended, not yet durable (finish not called).
	_, inflight := c.CommitOffsets(simpleCommit("inflight", 9, 0, 1))
	// A v4 commit asking for an hour of retention outlives the 100 ms.
	_, finishV4 := c.CommitOffsets(simpleCommit("kept", 4, time.Hour.Milliseconds(), 2))
	finishV4()

	deadline := time.Now().Add(3 * time.Second)
	for listed(c, "gone") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if listed(c, "gone") || len(offsetsOf(c, "gone")) != 0 {
		t.Fatalf("standalone commit not expired: %v", offsetsOf(c, "gone"))
	}
	time.Sleep(150 * time.Millisecond) // a few more runs, all past the retention
	if got := offsetsOf(c, "inflight"); len(got) != 0 {
		t.Fatalf("in-flight commit already applied: %v", got)
	}
	inflight()
	if got := offsetsOf(c, "inflight"); !equal(got, []string{"t/1"}) {
		t.Fatalf("in-flight commit lost to expiry: %v", got)
	}
	if got := offsetsOf(c, "kept"); !equal(got, []string{"t/2"}) {
		t.Fatalf("commit with an hour's retention time expired: %v", got)
	}

	// Reload the log: "gone" stays gone (its offset tombstone follows its
	// commit, and no group record is needed), the others come back, and
	// "kept" still carries its expire timestamp.
	log.mu.Lock()
	recs := append([]Record(nil), log.recs...)
	log.mu.Unlock()
	d := expiryCoordinator(&memLog{}, time.Millisecond, recs...)
	defer d.Close()
	if listed(d, "gone") {
		t.Errorf("expired group is back after reload: %v", offsetsOf(d, "gone"))
	}
	if got := offsetsOf(d, "kept"); !equal(got, []string{"t/2"}) {
		t.Errorf("kept after reload: %v", got)
	}
	expireAt(d, time.Now().Add(30*time.Minute).UnixMilli())
	if got := offsetsOf(d, "kept"); !equal(got, []string{"t/2"}) {
		t.Errorf("reloaded commit lost its retention time: %v", got)
	}
	expireAt(d, time.Now().Add(2*time.Hour).UnixMilli())
	if got := offsetsOf(d, "kept"); len(got) != 0 {
		t.Errorf("reloaded commit outlived its retention time: %v", got)
	}
}
