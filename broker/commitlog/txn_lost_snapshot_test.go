package commitlog

import (
	"os"
	"path/filepath"
	"testing"
)

// TestAbortedTxnsSurviveLostSnapshot: when the producer snapshots are lost
// (they are not fsynced: a power cut can leave them empty) the state is
// replayed from the first segment. The aborted transactions the replay
// finds in rolled segments must be written to those segments' .txnindex:
// written to the active one's, the next open (from a snapshot at the log
// end) dropped them as misplaced, and read_committed consumers saw their
// records again.
func TestAbortedTxnsSurviveLostSnapshot(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig()
	l := openLog(t, dir, cfg, 0, 0)
	txn := func(pid int64, seq int32) []byte {
		return buildBatch(batchSpec{records: [][2][]byte{kv("k", "v")}, ts: []int64{0}, pid: pid, epoch: 0, seq: seq, txn: true})
	}
	var want []AbortedTxn
	for i := range 6 {
		pid := int64(100 + i)
		first := appendOne(t, l, txn(pid, 0))
		last := appendOne(t, l, controlBatch(pid, 0, false, 0))
		want = append(want, AbortedTxn{ProducerID: pid, FirstOffset: first, LastOffset: last})
		if err := l.Roll(); err != nil {
			t.Fatal(err)
		}
	}
	appendOne(t, l, makeBatch([][2][]byte{kv("k", "active")}, 0, 0))
	end := l.EndOffset()
	check := func(l *Log, when string) {
		t.Helper()
		got := l.AbortedTransactions(0, end)
		if len(got) != len(want) {
			t.Fatalf("%s: aborted transactions %+v, want %d", when, got, len(want))
		}
		for i := range want {
			if got[i].ProducerID != want[i].ProducerID || got[i].FirstOffset != want[i].FirstOffset || got[i].LastOffset != want[i].LastOffset {
				t.Fatalf("%s: aborted transaction %d is %+v, want %+v", when, i, got[i], want[i])
			}
		}
	}
	check(l, "before closing")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	snaps, _ := filepath.Glob(filepath.Join(dir, "*"+snapshotExt))
	if len(snaps) == 0 {
		t.Fatal("no producer snapshot to lose")
	}
	for _, s := range snaps {
		if err := os.Truncate(s, 0); err != nil {
			t.Fatal(err)
		}
	}
	l = openLog(t, dir, cfg, 0, 0) // replays every segment
	check(l, "after losing the snapshots")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, cfg, 0, 0) // from the snapshot Close wrote
	defer l.Close()
	check(l, "after the next restart")
}
