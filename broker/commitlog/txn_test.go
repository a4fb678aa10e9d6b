package commitlog

import (
	"fmt"
	"os"
	"slices"
	"testing"
)

// tbatch is a transactional data batch of producer pid.
func tbatch(pid int64, seq int32, n int) []byte {
	recs := make([][2][]byte, n)
	ts := make([]int64, n)
	for i := range recs {
		recs[i] = kv(fmt.Sprintf("k%d-%d", pid, seq), fmt.Sprintf("v%d", i))
		ts[i] = 1000 + int64(i)
	}
	return buildBatch(batchSpec{records: recs, ts: ts, pid: pid, epoch: 0, seq: seq, txn: true})
}

// txnScenario writes, over several segments: producer 1 commits, producer
// 2 aborts, producer 3 leaves a transaction open, and plain records
// between them. It returns what the log must then answer.
type txnWant struct {
	lso     int64
	aborted []AbortedTxn
}

func txnScenario(t *testing.T, l *Log) txnWant {
	t.Helper()
	plain := func() { appendOne(t, l, makeBatch([][2][]byte{kv("p", "x")}, 1000, 0)) }
	var want txnWant
	seq := map[int64]int32{}
	tx := func(pid int64) int64 {
		base := appendOne(t, l, tbatch(pid, seq[pid], 3))
		seq[pid] += 3
		return base
	}
	for round := 0; round < 6; round++ {
		f1 := tx(1)
		f2 := tx(2)
		plain()
		tx(1)
		tx(2)
		appendOne(t, l, controlBatch(1, 0, true, 1000))
		m := appendOne(t, l, controlBatch(2, 0, false, 1000))
		if l.LastStableOffset() != l.EndOffset() {
			t.Fatalf("round %d: LSO %d with no transaction open, log end %d", round, l.LastStableOffset(), l.EndOffset())
		}
		want.aborted = append(want.aborted, AbortedTxn{ProducerID: 2, FirstOffset: f2, LastOffset: m, LastStableOffset: m + 1})
		_ = f1
	}
	open := tx(3)
	plain()
	tx(3)
	want.lso = open
	if got := l.LastStableOffset(); got != open {
		t.Fatalf("LSO %d, want %d (the open transaction's first offset)", got, open)
	}
	return want
}

func checkTxnState(t *testing.T, l *Log, want txnWant) {
	t.Helper()
	if got := l.LastStableOffset(); got != want.lso {
		t.Errorf("LSO = %d, want %d", got, want.lso)
	}
	if got := l.AbortedTransactions(0, l.EndOffset()); !slices.Equal(got, want.aborted) {
		t.Errorf("aborted transactions:\n got %v\nwant %v", got, want.aborted)
	}
	// A range query returns only the overlapping ones.
	if len(want.aborted) > 2 {
		a := want.aborted[1]
		got := l.AbortedTransactions(a.FirstOffset, a.LastOffset)
		if len(got) == 0 || got[0] != a || slices.Contains(got, want.aborted[0]) {
			t.Errorf("aborted in [%d, %d) = %v, want %v first and not %v", a.FirstOffset, a.LastOffset, got, a, want.aborted[0])
		}
	}
}

func TestTransactionsInLog(t *testing.T) {
	for _, tc := range []struct {
		name  string
		crash bool
		spoil func(t *testing.T, dir string)
	}{
		{name: "clean close"},
		{name: "crash", crash: true},
		{name: "snapshots missing", spoil: func(t *testing.T, dir string) {
			for _, off := range mustSnapshots(t, dir) {
				os.Remove(segPath(dir, off, snapshotExt))
			}
		}},
		{name: "transaction indexes missing past the snapshot", spoil: func(t *testing.T, dir string) {
			offs := mustSnapshots(t, dir)
			bases, _, _ := listSegments(dir)
			for _, b := range bases {
				if b >= offs[len(offs)-1] {
					os.Remove(segPath(dir, b, txnIndexExt))
				}
			}
		}},
		{name: "transaction indexes and snapshots missing", spoil: func(t *testing.T, dir string) {
			bases, _, _ := listSegments(dir)
			for _, b := range bases {
				os.Remove(segPath(dir, b, txnIndexExt))
			}
			for _, off := range mustSnapshots(t, dir) {
				os.Remove(segPath(dir, off, snapshotExt))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := smallConfig()
			cfg.SegmentBytes = 1024
			l := openLog(t, dir, cfg, 0, 0)
			want := txnScenario(t, l)
			if len(l.segments) < 4 {
				t.Fatalf("only %d segments", len(l.segments))
			}
			checkTxnState(t, l, want)
			end := l.EndOffset()
			closeOrCrash(t, l, tc.crash)
			if tc.spoil != nil {
				tc.spoil(t, dir)
			}
			l = openLog(t, dir, cfg, end, 0)
			defer l.Close()
			checkTxnState(t, l, want)
			// The open transaction still ends normally after the reopen.
			m := appendOne(t, l, controlBatch(3, 0, false, 1000))
			want.aborted = append(want.aborted, AbortedTxn{ProducerID: 3, FirstOffset: want.lso, LastOffset: m, LastStableOffset: m + 1})
			want.lso = l.EndOffset()
			checkTxnState(t, l, want)
		})
	}
}

func TestTransactionIndexFollowsRetention(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig()
	cfg.SegmentBytes = 1024
	l := openLog(t, dir, cfg, 0, 0)
	defer l.Close()
	want := txnScenario(t, l)
	before := len(l.AbortedTransactions(0, l.EndOffset()))
	cut := want.aborted[2].LastOffset + 1
	if _, err := l.DeleteRecordsBefore(cut, l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	cfg.RetentionBytes = 1 // delete every segment below the log start
	l.SetConfig(cfg)
	if _, err := l.EnforceRetention(0); err != nil {
		t.Fatal(err)
	}
	got := l.AbortedTransactions(0, l.EndOffset())
	if len(got) >= before {
		t.Fatalf("aborted transactions %d before retention, %d after", before, len(got))
	}
	for _, a := range got {
		if a.LastOffset < l.segments[0].base {
			t.Errorf("aborted transaction %v kept below the first segment %d", a, l.segments[0].base)
		}
	}
	// The open transaction's first batches may be gone with their segment:
	// the LSO is then the log start, never below it.
	if w := max(want.lso, l.StartOffset()); l.LastStableOffset() != w {
		t.Errorf("LSO %d after retention, want %d (open at %d, log start %d)", l.LastStableOffset(), w, want.lso, l.StartOffset())
	}
}

// A marker repeated (a coordinator retrying after a partial failure) or a
// marker without an open transaction changes nothing.
func TestRepeatedMarker(t *testing.T) {
	l := openLog(t, t.TempDir(), smallConfig(), 0, 0)
	defer l.Close()
	first := appendOne(t, l, tbatch(9, 0, 2))
	m := appendOne(t, l, controlBatch(9, 0, false, 1000))
	appendOne(t, l, controlBatch(9, 0, false, 1000))
	appendOne(t, l, controlBatch(8, 0, true, 1000))
	got := l.AbortedTransactions(0, l.EndOffset())
	if len(got) != 1 || got[0].FirstOffset != first || got[0].LastOffset != m {
		t.Fatalf("aborted = %v", got)
	}
	if l.LastStableOffset() != l.EndOffset() {
		t.Fatalf("LSO %d, log end %d", l.LastStableOffset(), l.EndOffset())
	}
}
