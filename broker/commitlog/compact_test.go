package commitlog

import (
	"bytes"
	"fmt"
	"math/rand"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func compactConfig() Config {
	c := smallConfig()
	c.Compact, c.Delete = true, false
	c.DeleteRetentionMs = 1000
	c.MinCompactionLagMs = 0
	return c
}

// keyedWorkload appends n batches of 1-4 records over a few keys, every
// codec, now and then a keyless record; it rolls at the end and appends one
// batch to the new active segment, which compaction must not touch.
func keyedWorkload(t *testing.T, l *Log, n int, seed int64) (w workload, activeFrom int64) {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	add := func(ts int64) {
		var kvs [][2][]byte
		for j := 0; j < 1+rng.Intn(4); j++ {
			r := kv(fmt.Sprintf("key%d", rng.Intn(12)), fmt.Sprintf("v%d.%d", len(w.batches), j))
			if rng.Intn(15) == 0 {
				r[0] = nil
			}
			kvs = append(kvs, r)
		}
		b := makeBatch(kvs, ts, allCodecs[rng.Intn(len(allCodecs))])
		base := appendOne(t, l, b)
		w.batches = append(w.batches, b)
		for j, r := range kvs {
			w.recs = append(w.recs, rec{off: base + int64(j), ts: ts + int64(j), key: string(r[0]), value: string(r[1]), nilKey: r[0] == nil})
		}
	}
	for i := 0; i < n; i++ {
		add(int64(1000 + i*10))
	}
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	activeFrom = l.EndOffset()
	add(int64(1000 + n*10))
	return w, activeFrom
}

// survivors is the model: what compaction keeps of w when nothing is a
// tombstone.
func survivors(w workload, activeFrom int64) []rec {
	latest := map[string]int64{}
	for _, r := range w.recs {
		if !r.nilKey {
			latest[r.key] = r.off
		}
	}
	var out []rec
	for _, r := range w.recs {
		if r.nilKey || r.off >= activeFrom || latest[r.key] == r.off {
			out = append(out, r)
		}
	}
	return out
}

// checkGaps fetches from every offset in [0, end) and checks that the answer
// starts with the first remaining batch that reaches that offset.
func checkGaps(t *testing.T, l *Log, end int64) {
	t.Helper()
	var hs []Header
	l.ReadBatches(0, func(_ []byte, h Header) bool { hs = append(hs, h); return true })
	for o := int64(0); o < end; o++ {
		s, err := l.Read(o, end, 1, true)
		if err != nil || s.Size == 0 {
			t.Fatalf("Read(%d): %+v %v", o, s, err)
		}
		buf := make([]byte, HeaderSize)
		s.File.ReadAt(buf, s.Pos)
		h, _ := ParseHeader(buf)
		var want Header
		for _, w := range hs {
			if w.LastOffset() >= o {
				want = w
				break
			}
		}
		if h.BaseOffset != want.BaseOffset || s.Size != h.Size() {
			t.Fatalf("Read(%d) gave batch %d, want %d", o, h.BaseOffset, want.BaseOffset)
		}
	}
}

func TestCompactKeepsNewest(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, compactConfig(), 0, 0)
	w, activeFrom := keyedWorkload(t, l, 150, 1)
	sizeBefore := l.Size()
	stats, err := l.Compact(1 << 40)
	if err != nil {
		t.Fatal(err)
	}
	want := survivors(w, activeFrom)
	if stats.Segments == 0 || stats.RecordsRemoved != int64(len(w.recs)-len(want)) || l.Size() >= sizeBefore {
		t.Fatalf("stats %+v; %d of %d records should go; size %d -> %d", stats, len(w.recs)-len(want), len(w.recs), sizeBefore, l.Size())
	}
	sameRecords(t, readRecords(t, l, 0), want)
	if l.EndOffset() != int64(len(w.recs)) {
		t.Fatalf("end offset moved to %d", l.EndOffset())
	}
	// Rebuilt batches keep their header fields, codec and offsets.
	orig := map[int64]Header{}
	for _, b := range w.batches {
		h, _ := ParseHeader(b)
		orig[h.BaseOffset] = h
	}
	l.ReadBatches(0, func(b []byte, h Header) bool {
		o, ok := orig[h.BaseOffset]
		if !ok || o.LastOffsetDelta != h.LastOffsetDelta || o.Attributes != h.Attributes || o.BaseTimestamp != h.BaseTimestamp ||
			o.ProducerID != h.ProducerID || o.BaseSequence != h.BaseSequence || o.LeaderEpoch != h.LeaderEpoch {
			t.Fatalf("batch %d: header %+v, was %+v", h.BaseOffset, h, o)
		}
		return true
	})
	checkGaps(t, l, l.EndOffset())
	// A second pass finds nothing to do.
	if stats, err := l.Compact(1 << 40); err != nil || stats.Segments != 0 {
		t.Fatalf("second pass: %+v %v", stats, err)
	}
	// Appends go on, and a restart (clean or not) keeps the compacted log.
	b := makeBatch([][2][]byte{kv("key1", "after")}, 99_999, kgo.CodecGzip)
	if base := appendOne(t, l, b); base != int64(len(w.recs)) {
		t.Fatalf("appended at %d", base)
	}
	want = append(want, rec{off: int64(len(w.recs)), ts: 99_999, key: "key1", value: "after"})
	l.Flush()
	for _, rp := range []int64{l.EndOffset(), 0} {
		l2 := openLog(t, dir, compactConfig(), rp, 0)
		sameRecords(t, readRecords(t, l2, 0), want)
		checkGaps(t, l2, l2.EndOffset())
		l2.Close()
	}
}

func TestCompactEmptiesWholeSegments(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, compactConfig(), 0, 0)
	for i := 0; i < 3; i++ { // three segments holding only key x
		appendOne(t, l, makeBatch([][2][]byte{kv("x", "1"), kv("x", "2")}, 10, kgo.CodecSnappy))
		appendOne(t, l, makeBatch([][2][]byte{kv("x", "3")}, 11, 0))
		l.Roll()
	}
	appendOne(t, l, makeBatch([][2][]byte{kv("x", "last"), kv("y", "1")}, 12, 0))
	l.Roll()
	appendOne(t, l, makeBatch([][2][]byte{kv("z", "active")}, 13, 0))
	if _, err := l.Compact(1 << 40); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint([]rec{{off: 9, ts: 12, key: "x", value: "last"}, {off: 10, ts: 13, key: "y", value: "1"}, {off: 11, ts: 13, key: "z", value: "active"}})
	for _, rp := range []int64{-1, 12, 0} { // as is, after a clean restart, after a crash
		if rp >= 0 {
			if rp > 0 {
				l.Close()
			} else {
				l.Flush()
			}
			l = openLog(t, dir, compactConfig(), rp, 0)
		}
		if got := readRecords(t, l, 0); fmt.Sprint(got) != want {
			t.Fatalf("got %+v", got)
		}
		checkGaps(t, l, l.EndOffset())
		if o, ts, ok, _ := l.OffsetForTimestamp(0); !ok || o != 9 || ts != 12 {
			t.Fatalf("earliest by time %d@%d", o, ts)
		}
		if l.EndOffset() != 12 {
			t.Fatalf("end %d", l.EndOffset())
		}
	}
	l.Close()
}

func TestCompactTombstonesAndLag(t *testing.T) {
	cfg := compactConfig()
	cfg.MinCompactionLagMs = 500
	l := openLog(t, t.TempDir(), cfg, 0, 0)
	defer l.Close()
	appendOne(t, l, makeBatch([][2][]byte{kv("a", "1"), kv("b", "1")}, 1000, kgo.CodecZstd))
	appendOne(t, l, makeBatch([][2][]byte{{[]byte("a"), nil}}, 2000, kgo.CodecLz4)) // tombstone, offset 2
	l.Roll()
	appendOne(t, l, makeBatch([][2][]byte{kv("c", "1")}, 3000, 0))
	l.Roll()
	appendOne(t, l, makeBatch([][2][]byte{kv("c", "2")}, 4000, 0))

	// Within min.compaction.lag.ms of the first segment nothing happens.
	if st, _ := l.Compact(2400); st.Segments != 0 || len(readRecords(t, l, 0)) != 5 {
		t.Fatalf("compacted inside the lag: %+v", st)
	}
	// Then a=1 goes and the tombstone stays for delete.retention.ms; c=1
	// stays, its segment being within the lag.
	st, err := l.Compact(2900)
	if err != nil || st.RecordsRemoved != 1 || st.TombstonesRemoved != 0 {
		t.Fatalf("%+v %v", st, err)
	}
	got := readRecords(t, l, 0)
	if len(got) != 4 || got[0].key != "b" || got[1].off != 2 || !got[1].nilValue || got[2].value != "1" {
		t.Fatalf("got %+v", got)
	}
	// After delete.retention.ms the tombstone goes, and c=1 too.
	st, err = l.Compact(3600)
	if err != nil || st.TombstonesRemoved != 1 || st.RecordsRemoved != 2 {
		t.Fatalf("%+v %v", st, err)
	}
	if got := readRecords(t, l, 0); fmt.Sprint(got) != fmt.Sprint([]rec{{off: 1, ts: 1001, key: "b", value: "1"}, {off: 4, ts: 4000, key: "c", value: "2"}}) {
		t.Fatalf("got %+v", got)
	}
	checkGaps(t, l, l.EndOffset())
}

func TestCompactTransactions(t *testing.T) {
	l := openLog(t, t.TempDir(), compactConfig(), 0, 0)
	defer l.Close()
	txn := func(pid int64, seq int32, kvs ...[2][]byte) []byte {
		ts := make([]int64, len(kvs))
		return buildBatch(batchSpec{records: kvs, ts: ts, pid: pid, epoch: 2, seq: seq, txn: true, codec: kgo.CodecGzip})
	}
	appendOne(t, l, makeBatch([][2][]byte{kv("a", "plain")}, 0, 0))        // 0: superseded by the commit
	appendOne(t, l, txn(7, 0, kv("a", "committed"), kv("b", "committed"))) // 1-2
	appendOne(t, l, controlBatch(7, 2, true, 0))                           // 3
	appendOne(t, l, txn(8, 0, kv("a", "aborted")))                         // 4: dropped
	appendOne(t, l, controlBatch(8, 2, false, 0))                          // 5
	appendOne(t, l, txn(9, 0, kv("b", "open")))                            // 6: undecided, kept
	l.Roll()
	appendOne(t, l, makeBatch([][2][]byte{kv("c", "active")}, 0, 0))
	if _, err := l.Compact(1 << 40); err != nil {
		t.Fatal(err)
	}
	var offs []int64
	var controls int
	l.ReadBatches(0, func(b []byte, h Header) bool {
		if h.IsControl() {
			controls++
		}
		if h.BaseOffset == 1 && (h.ProducerID != 7 || h.ProducerEpoch != 2 || !h.IsTransactional() || h.NumRecords != 2) {
			t.Fatalf("committed batch changed: %+v", h)
		}
		return true
	})
	for _, r := range readRecords(t, l, 0) {
		offs = append(offs, r.off)
	}
	if fmt.Sprint(offs) != "[1 2 3 5 6 7]" || controls != 2 {
		t.Fatalf("offsets %v, %d control batches", offs, controls)
	}
}

func TestRebuildBatchRoundTrip(t *testing.T) {
	for _, codec := range allCodecs {
		b := makeBatch([][2][]byte{kv("a", "1"), kv("b", "2"), kv("c", "3")}, 500, codec)
		h, _ := Validate(b)
		_, raws, err := decodeRecords(b)
		if err != nil {
			t.Fatal(err)
		}
		out, err := rebuildBatch(b, &h, [][]byte{raws[0], raws[2]}, 502)
		if err != nil {
			t.Fatal(err)
		}
		nh, err := Validate(out)
		if err != nil || nh.Compression() != h.Compression() || nh.NumRecords != 2 || nh.MaxTimestamp != 502 || nh.LastOffsetDelta != 2 {
			t.Fatalf("codec %d: %+v %v", codec, nh, err)
		}
		recs, err := DecodeRecords(out)
		if err != nil || len(recs) != 2 || recs[1].OffsetDelta != 2 || !bytes.Equal(recs[1].Value, []byte("3")) || recs[1].TimestampDelta64 != 2 {
			t.Fatalf("codec %d: %+v %v", codec, recs, err)
		}
	}
}
