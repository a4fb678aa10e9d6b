package commitlog

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

var allCodecs = []kgo.CompressionCodecType{kgo.CodecNone, kgo.CodecGzip, kgo.CodecSnappy, kgo.CodecLz4, kgo.CodecZstd}

// workload is what a test appended: each batch as stored (stamped) and
// every record in offset order.
type workload struct {
	batches [][]byte
	recs    []rec
}

// appendWorkload appends n batches of 1-6 records with every codec and
// timestamps that go back and forth between batches.
func appendWorkload(t testing.TB, l *Log, w *workload, n int, seed int64) {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	for i := 0; i < n; i++ {
		nrec := 1 + rng.Intn(6)
		ts := 1_000_000 + int64(len(w.batches))*10 + int64(rng.Intn(50)) - 25
		var kvs [][2][]byte
		for j := 0; j < nrec; j++ {
			kvs = append(kvs, kv(fmt.Sprintf("k%d", rng.Intn(20)), fmt.Sprintf("v%d-%d-%s", len(w.batches), j, bytes.Repeat([]byte("x"), rng.Intn(80)))))
		}
		b := makeBatch(kvs, ts, allCodecs[rng.Intn(len(allCodecs))])
		base := appendOne(t, l, b)
		if want := l.EndOffset() - int64(nrec); base != want {
			t.Fatalf("batch %d got base %d, want %d", i, base, want)
		}
		w.batches = append(w.batches, b)
		for j, r := range kvs {
			w.recs = append(w.recs, rec{off: base + int64(j), ts: ts + int64(j), key: string(r[0]), value: string(r[1])})
		}
	}
}

func sameRecords(t *testing.T, got, want []rec) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("record %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func sameBatches(t *testing.T, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d batches, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("batch %d differs", i)
		}
	}
}

func TestAppendAndRead(t *testing.T) {
	l := openLog(t, t.TempDir(), smallConfig(), 0, 0)
	defer l.Close()
	var w workload
	appendWorkload(t, l, &w, 400, 1)
	if n := len(l.segments); n < 10 {
		t.Fatalf("only %d segments; the test wants many", n)
	}
	end := l.EndOffset()
	if end != int64(len(w.recs)) {
		t.Fatalf("end offset %d, want %d", end, len(w.recs))
	}
	sameRecords(t, readRecords(t, l, 0), w.recs)
	for _, maxBytes := range []int64{1, 700, 5000, 1 << 20} {
		sameBatches(t, fetchAll(t, l, 0, end, maxBytes), w.batches)
	}
	// A fetch from any offset starts with the batch holding it.
	for _, r := range w.recs {
		s, err := l.Read(r.off, end, 1, true)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, HeaderSize)
		if _, err := s.File.ReadAt(buf, s.Pos); err != nil {
			t.Fatal(err)
		}
		h, _ := ParseHeader(buf)
		if h.BaseOffset > r.off || h.LastOffset() < r.off || s.Size != h.Size() {
			t.Fatalf("Read(%d) gave batch [%d, %d] of %d bytes", r.off, h.BaseOffset, h.LastOffset(), s.Size)
		}
		var firstBatch Header
		if err := l.ReadBatches(r.off, func(_ []byte, h Header) bool { firstBatch = h; return false }); err != nil {
			t.Fatal(err)
		}
		if firstBatch.BaseOffset > r.off || firstBatch.LastOffset() < r.off {
			t.Fatalf("ReadBatches(%d) starts with [%d, %d]", r.off, firstBatch.BaseOffset, firstBatch.LastOffset())
		}
	}
}

func TestReadLimits(t *testing.T) {
	l := openLog(t, t.TempDir(), smallConfig(), 0, 0)
	defer l.Close()
	var w workload
	appendWorkload(t, l, &w, 60, 2)
	start, end := l.Offsets()
	if _, err := l.Read(end+1, end+5, 100, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read past end: %v", err)
	}
	if s, err := l.Read(end, end+5, 100, true); err != nil || s.Size != 0 {
		t.Fatalf("read at end: %+v %v", s, err)
	}
	if s, err := l.Read(5, 5, 100, true); err != nil || s.Size != 0 {
		t.Fatalf("read at maxOffset: %+v %v", s, err)
	}
	first := int64(len(w.batches[0]))
	if s, _ := l.Read(start, end, 10, false); s.Size != 10 {
		t.Fatalf("maxBytes without minOne: size %d", s.Size)
	}
	if s, _ := l.Read(start, end, 10, true); s.Size != first {
		t.Fatalf("minOne: size %d, want %d", s.Size, first)
	}
	// A high watermark inside a batch or segment stops the read before
	// the batch that crosses it.
	for _, hw := range []int64{1, 7, 33, end - 1} {
		for _, b := range fetchAll(t, l, 0, hw, 1<<20) {
			h, _ := ParseHeader(b)
			if h.BaseOffset >= hw {
				t.Fatalf("hw %d: got batch %d", hw, h.BaseOffset)
			}
		}
	}
	l2 := openLog(t, t.TempDir(), smallConfig(), 0, 10)
	defer l2.Close()
	if _, err := l2.Read(9, 20, 100, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	if base := appendOne(t, l2, makeBatch([][2][]byte{kv("a", "b")}, 1, 0)); base != 10 {
		t.Fatalf("new log at start 10 appended at %d", base)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallConfig(), 0, 0)
	var w workload
	appendWorkload(t, l, &w, 200, 3)
	before := snapshotLog(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("%020d.index", 0))); err != nil {
		t.Fatalf("index missing after Close: %v", err)
	}
	for _, rp := range []int64{before.durable, 0, before.end / 2} {
		l = openLog(t, dir, smallConfig(), rp, before.start)
		after := snapshotLog(t, l)
		if fmt.Sprint(after.meta) != fmt.Sprint(before.meta) || after.durable != max(rp, 0) {
			t.Fatalf("recovery point %d: reopened as %+v, was %+v", rp, after, before)
		}
		sameRecords(t, readRecords(t, l, 0), w.recs)
		sameBatches(t, fetchAll(t, l, 0, before.end, 4096), w.batches)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// A checkpointed log start offset is kept, and appends go on.
	l = openLog(t, dir, smallConfig(), before.end, 17)
	defer l.Close()
	if s, e := l.Offsets(); s != 17 || e != before.end {
		t.Fatalf("offsets %d-%d", s, e)
	}
	if base := appendOne(t, l, makeBatch([][2][]byte{kv("a", "b")}, 5, kgo.CodecZstd)); base != before.end {
		t.Fatalf("append after reopen at %d, want %d", base, before.end)
	}
}

// logState is what a restart must keep.
type logState struct {
	start, end, durable int64
	meta                []string // per segment: base, next, size, maxTs
	times               []string // OffsetForTimestamp answers
}

func snapshotLog(t *testing.T, l *Log) logState {
	t.Helper()
	var s logState
	s.start, s.end = l.Offsets()
	s.durable = l.DurableOffset()
	l.mu.RLock()
	for _, seg := range l.segments {
		s.meta = append(s.meta, fmt.Sprint(seg.base, seg.next, seg.size, seg.maxTs))
	}
	l.mu.RUnlock()
	for ts := int64(999_900); ts < 1_003_000; ts += 37 {
		o, rts, ok, err := l.OffsetForTimestamp(ts)
		s.meta = append(s.meta, fmt.Sprint(ts, o, rts, ok, err))
	}
	o, ts, err := l.MaxTimestamp()
	s.meta = append(s.meta, fmt.Sprint("max", o, ts, err))
	return s
}

func TestOffsetForTimestamp(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallConfig(), 0, 0)
	var w workload
	appendWorkload(t, l, &w, 120, 4)
	check := func(l *Log, start int64) {
		t.Helper()
		var visible []rec
		for _, r := range w.recs {
			if r.off >= start {
				visible = append(visible, r)
			}
		}
		for ts := int64(999_000); ts < 1_002_000; ts += 23 {
			o, rts, ok, err := l.OffsetForTimestamp(ts)
			if err != nil {
				t.Fatal(err)
			}
			var want *rec
			for i := range visible {
				if visible[i].ts >= ts {
					want = &visible[i]
					break
				}
			}
			switch {
			case want == nil && ok:
				t.Fatalf("ts %d: got %d@%d, want none", ts, o, rts)
			case want != nil && (!ok || o != want.off || rts != want.ts):
				t.Fatalf("ts %d start %d: got %d@%d (%v), want %d@%d", ts, start, o, rts, ok, want.off, want.ts)
			}
		}
		best := visible[0]
		for _, r := range visible {
			if r.ts > best.ts {
				best = r
			}
		}
		if o, ts, err := l.MaxTimestamp(); err != nil || o != best.off || ts != best.ts {
			t.Fatalf("MaxTimestamp start %d: %d@%d %v, want %d@%d", start, o, ts, err, best.off, best.ts)
		}
	}
	check(l, 0)
	end := l.EndOffset()
	l.Close()
	// A log start offset inside a batch and a segment hides the records
	// below it, also from the max timestamp.
	for _, start := range []int64{3, end / 3, end - 2} {
		l = openLog(t, dir, smallConfig(), end, start)
		check(l, start)
		l.Close()
	}
}

// checkTimestamps compares timestamp lookups with a brute-force answer over
// the batches the log should hold.
func checkTimestamps(t *testing.T, l *Log, want [][]byte) {
	t.Helper()
	var recs []rec
	for _, b := range want {
		h, _ := ParseHeader(b)
		rs, err := DecodeRecords(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			recs = append(recs, rec{off: h.BaseOffset + int64(r.OffsetDelta), ts: h.BaseTimestamp + r.TimestampDelta64})
		}
	}
	if len(recs) == 0 {
		return
	}
	best := recs[0]
	for _, r := range recs {
		if r.ts > best.ts {
			best = r
		}
	}
	if o, ts, err := l.MaxTimestamp(); err != nil || o != best.off || ts != best.ts {
		t.Fatalf("MaxTimestamp %d@%d %v, want %d@%d", o, ts, err, best.off, best.ts)
	}
	for ts := recs[0].ts - 50; ts <= best.ts+1; ts += 97 {
		o, rts, ok, err := l.OffsetForTimestamp(ts)
		var w *rec
		for i := range recs {
			if recs[i].ts >= ts {
				w = &recs[i]
				break
			}
		}
		if err != nil || (w == nil) == ok || (w != nil && (o != w.off || rts != w.ts)) {
			t.Fatalf("OffsetForTimestamp(%d) = %d@%d %v %v, want %+v", ts, o, rts, ok, err, w)
		}
	}
}
