package commitlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// threeRecordBatches appends n batches of three records each (offsets
// 3i..3i+2) and returns their records as read back.
func threeRecordBatches(t *testing.T, l *Log, n int) []rec {
	t.Helper()
	for i := range n {
		b := makeBatch([][2][]byte{kv("k", fmt.Sprint(i, "a")), kv("k", fmt.Sprint(i, "b")), kv("k", strings.Repeat("c", 60))}, 1000, 0)
		appendOne(t, l, b)
	}
	return readRecords(t, l, 0)
}

func TestTruncateTo(t *testing.T) {
	cfg := smallConfig()
	cfg.SegmentBytes = 1024
	type tcase struct {
		name    string
		offset  func(l *Log) int64 // where to truncate
		wantEnd func(l *Log) int64
	}
	segBase := func(i int) func(l *Log) int64 { return func(l *Log) int64 { return l.segments[i].base } }
	cases := []tcase{
		{"middle of a segment", func(l *Log) int64 { return l.segments[2].base + 6 }, func(l *Log) int64 { return l.segments[2].base + 6 }},
		{"segment boundary", segBase(3), segBase(3)},
		{"across several segments", segBase(1), segBase(1)},
		{"first record", func(*Log) int64 { return 0 }, func(*Log) int64 { return 0 }},
		{"inside a batch", func(l *Log) int64 { return l.segments[2].base + 7 }, func(l *Log) int64 { return l.segments[2].base + 6 }},
		{"last batch", func(l *Log) int64 { return l.next - 3 }, func(l *Log) int64 { return l.next - 3 }},
		{"at the log end", func(l *Log) int64 { return l.next }, func(l *Log) int64 { return l.next }},
		{"past the log end", func(l *Log) int64 { return l.next + 10 }, func(l *Log) int64 { return l.next }},
	}
	for _, tc := range cases {
		for _, crash := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/crash=%v", tc.name, crash), func(t *testing.T) {
				dir := t.TempDir()
				l := openLog(t, dir, cfg, 0, 0)
				all := threeRecordBatches(t, l, 60)
				if len(l.segments) < 5 {
					t.Fatalf("only %d segments", len(l.segments))
				}
				if err := l.Flush(); err != nil {
					t.Fatal(err)
				}
				oldEnd := l.EndOffset()
				off, want := tc.offset(l), tc.wantEnd(l)
				if err := l.TruncateTo(off); err != nil {
					t.Fatal(err)
				}
				check := func(stage string, extra []rec) {
					t.Helper()
					wantRecs := append(slices.Clone(all[:want]), extra...)
					if got := readRecords(t, l, 0); !slices.Equal(got, wantRecs) {
						t.Fatalf("%s: %d records, want %d (end %d)", stage, len(got), len(wantRecs), l.EndOffset())
					}
					if end := l.EndOffset(); end != want+int64(len(extra)) {
						t.Fatalf("%s: log end %d, want %d", stage, end, want+int64(len(extra)))
					}
					if got := len(fetchAll(t, l, 0, l.EndOffset(), 1<<20)); got == 0 && l.EndOffset() > 0 {
						t.Fatalf("%s: nothing fetched", stage)
					}
				}
				check("after truncation", nil)
				if d := l.DurableOffset(); d > want {
					t.Errorf("durable offset %d above the new end %d", d, want)
				}
				// A crash right after: the removed records stay removed.
				if crash {
					closeOrCrash(t, l, true)
					l = openLog(t, dir, cfg, oldEnd, 0)
					check("after a crash", nil)
				}
				// Appends continue at the new end.
				b := makeBatch([][2][]byte{kv("new", "x")}, 5000, 0)
				if got := appendOne(t, l, b); got != want {
					t.Fatalf("append after truncation at %d", got)
				}
				extra := []rec{{off: want, ts: 5000, key: "new", value: "x"}}
				check("after an append", extra)
				closeOrCrash(t, l, crash)
				rp := l.DurableOffset()
				if crash {
					rp = oldEnd // the broker's checkpoint may still hold the old end
				}
				l = openLog(t, dir, cfg, rp, 0)
				defer l.Close()
				check("after reopening", extra)
			})
		}
	}
}

func TestTruncateToBelowStart(t *testing.T) {
	l := openLog(t, t.TempDir(), smallConfig(), 0, 0)
	defer l.Close()
	threeRecordBatches(t, l, 4)
	if _, err := l.DeleteRecordsBefore(6, -1); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateTo(5); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("truncate below the start: %v", err)
	}
	if err := l.TruncateTo(6); err != nil || l.EndOffset() != 6 {
		t.Fatalf("truncate to the start: %v, end %d", err, l.EndOffset())
	}
}

// A fetch holding a byte range from before a truncation reads the old
// bytes, never those appended since at the same positions.
func TestTruncateToKeepsFetchedRanges(t *testing.T) {
	l := openLog(t, t.TempDir(), smallConfig(), 0, 0)
	defer l.Close()
	threeRecordBatches(t, l, 8)
	s, err := l.Read(12, l.EndOffset(), 1<<20, true)
	if err != nil || s.Size == 0 {
		t.Fatal(s, err)
	}
	before := make([]byte, s.Size)
	if _, err := s.File.ReadAt(before, s.Pos); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateTo(9); err != nil {
		t.Fatal(err)
	}
	for range 8 {
		appendOne(t, l, makeBatch([][2][]byte{kv("other", strings.Repeat("z", 90))}, 1000, 0))
	}
	after := make([]byte, s.Size)
	if _, err := s.File.ReadAt(after, s.Pos); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("a range read before the truncation changed under the reader")
	}
}

func TestTruncateToRollsBackProducers(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			dir := t.TempDir()
			cfg := smallConfig()
			cfg.SegmentBytes = 1024
			l := openLog(t, dir, cfg, 0, 0)
			var bases []int64
			var batches [][]byte
			for i := range 40 {
				b := idemBatch(7, 0, int32(i*2), 2)
				batches = append(batches, b)
				bases = append(bases, appendOne(t, l, bytes.Clone(b)))
			}
			if len(l.snapshots) == 0 {
				t.Fatal("no producer snapshot written")
			}
			cut := 17
			if err := l.TruncateTo(bases[cut]); err != nil {
				t.Fatal(err)
			}
			_, snaps, _ := listSegments(dir)
			for _, off := range snaps {
				if off > bases[cut] {
					t.Errorf("snapshot %d left above the new end %d", off, bases[cut])
				}
			}
			check := func(stage string) {
				t.Helper()
				st, ok := l.Producer(7)
				if !ok || st.LastSequence != int32(cut*2-1) || st.LastOffset != bases[cut]-1 {
					t.Fatalf("%s: producer state %+v, want last sequence %d at %d", stage, st, cut*2-1, bases[cut]-1)
				}
				// The batch before the cut is a duplicate; the one at the
				// cut is accepted again rather than a duplicate.
				if off, err := l.Append([]Batch{toBatch(t, bytes.Clone(batches[cut-1]))}, 3); !errors.Is(err, ErrDuplicateBatch) || off != bases[cut-1] {
					t.Fatalf("%s: retry of the batch before the cut: (%d, %v)", stage, off, err)
				}
			}
			check("after truncation")
			closeOrCrash(t, l, crash)
			l = openLog(t, dir, cfg, bases[39], 0)
			check("after reopening")
			if off := appendOne(t, l, bytes.Clone(batches[cut])); off != bases[cut] {
				t.Fatalf("re-append at %d, want %d", off, bases[cut])
			}
			l.Close()
		})
	}
}

func TestTruncateToRollsBackTransactions(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			dir := t.TempDir()
			cfg := smallConfig()
			cfg.SegmentBytes = 1024
			l := openLog(t, dir, cfg, 0, 0)
			full := txnScenario(t, l)
			oldEnd := l.EndOffset()
			// Cut at round 3's abort marker: producer 2's transaction is
			// open again, the aborted list loses rounds 3 to 5.
			m := full.aborted[3]
			if err := l.TruncateTo(m.LastOffset); err != nil {
				t.Fatal(err)
			}
			want := txnWant{lso: m.FirstOffset, aborted: full.aborted[:3]}
			checkTxnState(t, l, want)
			checkTxnIndexFiles(t, dir, m.LastOffset)
			closeOrCrash(t, l, crash)
			checkTxnIndexFiles(t, dir, m.LastOffset)
			l = openLog(t, dir, cfg, oldEnd, 0)
			checkTxnState(t, l, want)
			// Cutting at producer 2's first offset removes its transaction;
			// producer 1's, begun just before (three records) and
			// committed after, is open again.
			if err := l.TruncateTo(m.FirstOffset); err != nil {
				t.Fatal(err)
			}
			want.lso = m.FirstOffset - 3
			checkTxnState(t, l, want)
			if st, _ := l.Producer(2); st.TxnFirst != -1 {
				t.Errorf("producer 2 still has a transaction open at %d", st.TxnFirst)
			}
			l.Close()
		})
	}
}

// checkTxnIndexFiles fails if a .txnindex in dir holds a marker at or
// past end.
func checkTxnIndexFiles(t *testing.T, dir string, end int64) {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "*"+txnIndexExt))
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for ; len(b) >= txnEntrySize; b = b[txnEntrySize:] {
			if m := int64(binary.BigEndian.Uint64(b[18:])); m >= end {
				t.Errorf("%s keeps an abort marker at %d, past the new end %d", filepath.Base(name), m, end)
			}
		}
	}
}

func TestTruncateToTrimsEpochs(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallConfig(), 0, 0)
	appendEpochs(t, l, 1, 1, 2, 2, 3) // 1@0, 2@4, 3@8
	if err := l.TruncateTo(6); err != nil {
		t.Fatal(err)
	}
	if want := []epochEntry{{1, 0}, {2, 4}}; !slices.Equal(l.epochs.entries, want) || l.LatestEpoch() != 2 {
		t.Fatalf("epochs %v, want %v", l.epochs.entries, want)
	}
	checkEpochQueries(t, l, []epochQuery{{1, 1, 4}, {2, 2, 6}, {3, -1, -1}})
	if err := l.TruncateTo(4); err != nil {
		t.Fatal(err)
	}
	if got, want := epochFile(t, dir), "0\n1\n1 0\n"; got != want {
		t.Fatalf("checkpoint %q, want %q", got, want)
	}
	l.Close()
	l = openLog(t, dir, smallConfig(), 0, 0)
	defer l.Close()
	checkEpochQueries(t, l, []epochQuery{{1, 1, 4}, {2, -1, -1}})
}

// TestTruncateToEndDropsEmptyEpoch: a leader that assigned an epoch and
// appended nothing, then was deposed, truncates to its own log end when
// the new leader tells it where they diverge. No record goes, but that
// epoch must: else it stays the epoch the follower fetches with, one the
// new leader never had, and the follower never gets past it.
func TestTruncateToEndDropsEmptyEpoch(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallConfig(), 0, 0)
	appendEpochs(t, l, 1, 1, 2, 2) // 1@0, 2@4, end 8
	if err := l.AssignEpoch(5); err != nil {
		t.Fatal(err)
	}
	if l.LatestEpoch() != 5 {
		t.Fatalf("latest epoch %d after AssignEpoch(5)", l.LatestEpoch())
	}
	if err := l.TruncateTo(l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	if l.EndOffset() != 8 || l.LatestEpoch() != 2 {
		t.Fatalf("end %d latest epoch %d, want 8 and 2", l.EndOffset(), l.LatestEpoch())
	}
	if got, want := epochFile(t, dir), "0\n2\n1 0\n2 4\n"; got != want {
		t.Fatalf("checkpoint %q, want %q", got, want)
	}
	if err := l.TruncateTo(100); err != nil { // past the end: nothing to do
		t.Fatal(err)
	}
	checkEpochQueries(t, l, []epochQuery{{1, 1, 4}, {2, 2, 8}, {5, -1, -1}})
}

func TestTruncateFullyAndStartAt(t *testing.T) {
	for _, start := range []int64{0, 1000} {
		t.Run(fmt.Sprint(start), func(t *testing.T) {
			dir := t.TempDir()
			cfg := smallConfig()
			cfg.SegmentBytes = 1024
			l := openLog(t, dir, cfg, 0, 0)
			txnScenario(t, l)
			appendEpochs(t, l, 5)
			if err := l.TruncateFullyAndStartAt(start); err != nil {
				t.Fatal(err)
			}
			check := func(stage string) {
				t.Helper()
				if s, e := l.Offsets(); s != start || e != start {
					t.Fatalf("%s: offsets [%d, %d], want %d", stage, s, e, start)
				}
				if len(l.Producers()) != 0 || l.LastStableOffset() != start || len(l.AbortedTransactions(0, 1<<62)) != 0 {
					t.Fatalf("%s: producers %v, LSO %d, aborted %v", stage, l.Producers(), l.LastStableOffset(), l.AbortedTransactions(0, 1<<62))
				}
				if l.LatestEpoch() != -1 {
					t.Fatalf("%s: latest epoch %d", stage, l.LatestEpoch())
				}
			}
			check("after")
			if l.DurableOffset() != start {
				t.Errorf("durable offset %d", l.DurableOffset())
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if n := e.Name(); n != fmt.Sprintf("%020d.log", start) && n != epochCheckpointName {
					t.Errorf("file %s left", n)
				}
			}
			closeOrCrash(t, l, true)
			l = openLog(t, dir, cfg, 0, 0)
			check("after a crash")
			if off := appendOne(t, l, tbatch(2, 0, 2)); off != start {
				t.Fatalf("append at %d", off)
			}
			if l.LastStableOffset() != start {
				t.Errorf("LSO %d with a new transaction open at %d", l.LastStableOffset(), start)
			}
			l.Close()
		})
	}
}
