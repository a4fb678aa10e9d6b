package commitlog

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"testing"
	"time"
)

// pbatch is an idempotent producer's batch of n records.
func pbatch(pid int64, epoch int16, seq int32, n int) []byte {
	recs := make([][2][]byte, n)
	ts := make([]int64, n)
	for i := range recs {
		recs[i] = kv(fmt.Sprintf("k%d", seq), fmt.Sprintf("v%d-%d", seq, i))
		ts[i] = 1000 + int64(i)
	}
	return buildBatch(batchSpec{records: recs, ts: ts, pid: pid, epoch: epoch, seq: seq})
}

type pstep struct {
	epoch int16
	seq   int32
	n     int
	err   error // nil, ErrDuplicateBatch, ErrOutOfOrderSequence, ErrInvalidProducerEpoch
	base  int64 // expected base offset on success or duplicate
}

func TestProducerSequenceRules(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []pstep
	}{
		{"in order", []pstep{{0, 0, 2, nil, 0}, {0, 2, 3, nil, 2}, {0, 5, 1, nil, 5}}},
		{"unknown producer at any sequence", []pstep{{3, 17, 2, nil, 0}, {3, 19, 1, nil, 2}}},
		{"duplicate of the last batch", []pstep{{0, 0, 2, nil, 0}, {0, 2, 2, nil, 2}, {0, 2, 2, ErrDuplicateBatch, 2}}},
		{"duplicate of the oldest of five", []pstep{
			{0, 0, 1, nil, 0}, {0, 1, 1, nil, 1}, {0, 2, 1, nil, 2}, {0, 3, 1, nil, 3}, {0, 4, 1, nil, 4},
			{0, 0, 1, ErrDuplicateBatch, 0},
		}},
		{"a sixth batch back is no longer known", []pstep{
			{0, 0, 1, nil, 0}, {0, 1, 1, nil, 1}, {0, 2, 1, nil, 2}, {0, 3, 1, nil, 3}, {0, 4, 1, nil, 4}, {0, 5, 1, nil, 5},
			{0, 0, 1, ErrOutOfOrderSequence, 0},
		}},
		{"same first sequence, other length", []pstep{{0, 0, 2, nil, 0}, {0, 0, 3, ErrOutOfOrderSequence, 0}}},
		{"gap", []pstep{{0, 0, 2, nil, 0}, {0, 3, 1, ErrOutOfOrderSequence, 0}, {0, 2, 1, nil, 2}}},
		{"sequence going back", []pstep{{0, 0, 2, nil, 0}, {0, 2, 2, nil, 2}, {0, 1, 1, ErrOutOfOrderSequence, 0}}},
		{"lower epoch", []pstep{{1, 0, 1, nil, 0}, {0, 1, 1, ErrInvalidProducerEpoch, 0}, {0, 0, 1, ErrInvalidProducerEpoch, 0}}},
		{"new epoch starts at zero", []pstep{{0, 0, 3, nil, 0}, {1, 0, 1, nil, 3}, {1, 1, 1, nil, 4}, {0, 3, 1, ErrInvalidProducerEpoch, 0}}},
		{"new epoch not at zero", []pstep{{0, 0, 3, nil, 0}, {1, 3, 1, ErrOutOfOrderSequence, 0}}},
		{"old epoch's batches are no duplicates", []pstep{{0, 0, 1, nil, 0}, {1, 0, 1, nil, 1}, {0, 0, 1, ErrInvalidProducerEpoch, 0}}},
		{"wrap at MaxInt32", []pstep{
			{0, math.MaxInt32 - 1, 2, nil, 0}, {0, 0, 2, nil, 2}, {0, 2, 1, nil, 4},
		}},
		{"batch spanning the wrap", []pstep{
			{0, math.MaxInt32 - 1, 1, nil, 0}, {0, math.MaxInt32, 3, nil, 1}, {0, 2, 1, nil, 4},
			{0, math.MaxInt32, 3, ErrDuplicateBatch, 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := openLog(t, t.TempDir(), smallConfig(), 0, 0)
			defer l.Close()
			for i, s := range tc.steps {
				base, err := l.Append([]Batch{toBatch(t, pbatch(7, s.epoch, s.seq, s.n))}, 0)
				if !errors.Is(err, s.err) || (s.err == nil) != (err == nil) {
					t.Fatalf("step %d (epoch %d seq %d): err %v, want %v", i, s.epoch, s.seq, err, s.err)
				}
				if (err == nil || errors.Is(err, ErrDuplicateBatch)) && base != s.base {
					t.Fatalf("step %d: base %d, want %d", i, base, s.base)
				}
			}
		})
	}
}

func TestLastSequence(t *testing.T) {
	for _, c := range []struct {
		base, delta, want int32
	}{
		{0, 0, 0}, {5, 3, 8}, {math.MaxInt32, 0, math.MaxInt32}, {math.MaxInt32, 1, 0},
		{math.MaxInt32 - 1, 3, 1}, {math.MaxInt32 - 10, 10, math.MaxInt32},
	} {
		h := Header{BaseSequence: c.base, LastOffsetDelta: c.delta}
		if got := lastSequence(&h); got != c.want {
			t.Errorf("lastSequence(%d+%d) = %d, want %d", c.base, c.delta, got, c.want)
		}
	}
}

// Producers that never send ids are not tracked, and their batches never
// collide with anything.
func TestNoProducerIDNotTracked(t *testing.T) {
	l := openLog(t, t.TempDir(), smallConfig(), 0, 0)
	defer l.Close()
	b := makeBatch([][2][]byte{kv("a", "1")}, 1000, 0)
	appendOne(t, l, b)
	if base := appendOne(t, l, makeBatch([][2][]byte{kv("a", "1")}, 1000, 0)); base != 1 {
		t.Errorf("second plain batch at %d", base)
	}
	if len(l.producers) != 0 {
		t.Errorf("tracked %d producers", len(l.producers))
	}
}

// Many goroutines send the same batches of one producer at once (a client
// retrying on several connections): each batch lands once, and every sender
// hears its one offset.
func TestProducerConcurrentRetries(t *testing.T) {
	l := openLog(t, t.TempDir(), smallConfig(), 0, 0)
	defer l.Close()
	const batches, senders = 50, 8
	for seq := range batches {
		data := pbatch(1, 0, int32(seq), 1)
		var wg sync.WaitGroup
		bases := make([]int64, senders)
		errs := make([]error, senders)
		for g := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b := toBatch(t, append([]byte(nil), data...))
				bases[g], errs[g] = l.Append([]Batch{b}, 0)
			}()
		}
		wg.Wait()
		appended := 0
		for g := range senders {
			switch {
			case errs[g] == nil:
				appended++
			case !errors.Is(errs[g], ErrDuplicateBatch):
				t.Fatalf("seq %d sender %d: %v", seq, g, errs[g])
			}
			if bases[g] != int64(seq) {
				t.Fatalf("seq %d sender %d: base %d", seq, g, bases[g])
			}
		}
		if appended != 1 {
			t.Fatalf("seq %d appended %d times", seq, appended)
		}
	}
	if end := l.EndOffset(); end != batches {
		t.Errorf("log end %d, want %d", end, batches)
	}
}

// fill appends n single-record batches of producer pid from sequence 0 and
// returns the base offset of each.
func fill(t *testing.T, l *Log, pid int64, n int) []int64 {
	t.Helper()
	var bases []int64
	for seq := range n {
		base, err := l.Append([]Batch{toBatch(t, pbatch(pid, 0, int32(seq), 1))}, 0)
		if err != nil {
			t.Fatalf("producer %d seq %d: %v", pid, seq, err)
		}
		bases = append(bases, base)
	}
	return bases
}

// checkResumes checks that the log knows producer pid sent n batches: a
// retry of the last one is a duplicate at its old offset, and the next
// sequence is taken.
func checkResumes(t *testing.T, l *Log, pid int64, n int, bases []int64) {
	t.Helper()
	base, err := l.Append([]Batch{toBatch(t, pbatch(pid, 0, int32(n-1), 1))}, 0)
	if !errors.Is(err, ErrDuplicateBatch) || base != bases[n-1] {
		t.Fatalf("producer %d retry of seq %d: base %d err %v, want duplicate at %d", pid, n-1, base, err, bases[n-1])
	}
	if _, err := l.Append([]Batch{toBatch(t, pbatch(pid, 0, int32(n+1), 1))}, 0); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("producer %d gap after restart: %v", pid, err)
	}
	if _, err := l.Append([]Batch{toBatch(t, pbatch(pid, 0, int32(n), 1))}, 0); err != nil {
		t.Fatalf("producer %d seq %d after restart: %v", pid, n, err)
	}
}

func TestProducerStateSurvivesRestart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		crash bool                           // reopen without Close
		spoil func(t *testing.T, dir string) // done to the snapshots before reopening
	}{
		{name: "clean close"},
		{name: "crash after rolls", crash: true},
		{name: "snapshots missing", spoil: func(t *testing.T, dir string) {
			for _, off := range mustSnapshots(t, dir) {
				os.Remove(segPath(dir, off, snapshotExt))
			}
		}},
		{name: "snapshots corrupt", spoil: func(t *testing.T, dir string) {
			for _, off := range mustSnapshots(t, dir) {
				p := segPath(dir, off, snapshotExt)
				b, _ := os.ReadFile(p)
				b[len(b)-1] ^= 0xff
				os.WriteFile(p, b, 0o644)
			}
		}},
		{name: "newest corrupt, older one used", spoil: func(t *testing.T, dir string) {
			offs := mustSnapshots(t, dir)
			os.WriteFile(segPath(dir, offs[len(offs)-1], snapshotExt), []byte("garbage"), 0o644)
		}},
		{name: "snapshot past the log end", spoil: func(t *testing.T, dir string) {
			// A snapshot from a tail lost in a crash must not be trusted.
			ps := producerStates{1: {epoch: 0, batches: []producerBatch{{firstSeq: 900, lastSeq: 900, firstOffset: 900, lastOffset: 900}}}}
			os.WriteFile(segPath(dir, 1<<40, snapshotExt), encodeProducerSnapshot(ps, 1<<40), 0o644)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir, smallConfig(), 0, 0)
			bases1 := fill(t, l, 1, 120) // rolls several 4 KiB segments
			bases2 := fill(t, l, 2, 3)
			if len(l.segments) < 3 {
				t.Fatalf("only %d segments", len(l.segments))
			}
			end := l.EndOffset()
			closeOrCrash(t, l, tc.crash)
			if tc.spoil != nil {
				tc.spoil(t, dir)
			}
			l = openLog(t, dir, smallConfig(), end, 0)
			defer l.Close()
			checkResumes(t, l, 1, 120, bases1)
			checkResumes(t, l, 2, 3, bases2)
			// Older batches of producer 1 are still recognised as long
			// as they are among its last five.
			if base, err := l.Append([]Batch{toBatch(t, pbatch(1, 0, 118, 1))}, 0); !errors.Is(err, ErrDuplicateBatch) || base != bases1[118] {
				t.Errorf("retry of seq 118: base %d err %v", base, err)
			}
		})
	}
}

func mustSnapshots(t *testing.T, dir string) []int64 {
	t.Helper()
	_, offs, err := listSegments(dir)
	if err != nil || len(offs) == 0 {
		t.Fatalf("snapshots %v, err %v", offs, err)
	}
	return offs
}

func TestProducerSnapshotsPruned(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallConfig(), 0, 0)
	fill(t, l, 1, 200)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	offs := mustSnapshots(t, dir)
	if len(offs) != snapshotsKept || offs[len(offs)-1] != 200 {
		t.Errorf("snapshots at %v, want %d ending at 200", offs, snapshotsKept)
	}

	// After a reopen the log still knows its old snapshots and prunes
	// them; an interrupted write's leftover goes at open.
	tmp := segPath(dir, 150, snapshotExt+".tmp")
	os.WriteFile(tmp, []byte("half"), 0o644)
	l = openLog(t, dir, smallConfig(), 200, 0)
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("leftover %s: %v", tmp, err)
	}
	for seq := 200; seq < 300; seq++ {
		if _, err := l.Append([]Batch{toBatch(t, pbatch(1, 0, int32(seq), 1))}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if offs := mustSnapshots(t, dir); len(offs) != snapshotsKept || offs[len(offs)-1] != 300 {
		t.Errorf("snapshots after reopen at %v, want %d ending at 300", offs, snapshotsKept)
	}
}

// State outlives retention; producer.id.expiration.ms removes it.
func TestProducerStateRetentionAndExpiry(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig()
	l := openLog(t, dir, cfg, 0, 0)
	defer l.Close()
	bases := fill(t, l, 1, 60)
	if _, err := l.DeleteRecordsBefore(-1, -1); err != nil {
		t.Fatal(err)
	}
	if st, ok := l.Producer(1); !ok || st.LastSequence != 59 || st.LastOffset != bases[59] {
		t.Fatalf("after DeleteRecords: %+v %v", st, ok)
	}
	if _, err := l.Append([]Batch{toBatch(t, pbatch(1, 0, 61, 1))}, 0); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Errorf("gap after DeleteRecords: %v", err)
	}
	// Expiry counts from the last append on the broker's clock, not from
	// the batches' timestamps (1000 ms after the epoch here).
	now := time.Now().UnixMilli()
	if n := l.ExpireProducers(now, 10_000); n != 0 {
		t.Errorf("expired %d producers early", n)
	}
	if n := l.ExpireProducers(now+11_000, 10_000); n != 1 {
		t.Errorf("expired %d producers, want 1", n)
	}
	if _, ok := l.Producer(1); ok {
		t.Fatal("producer still known")
	}
	// An unknown producer is accepted at any sequence (Kafka 2.5+).
	if _, err := l.Append([]Batch{toBatch(t, pbatch(1, 0, 61, 1))}, 0); err != nil {
		t.Errorf("expired producer resuming: %v", err)
	}
}

func TestProducerSnapshotRoundTrip(t *testing.T) {
	ps := producerStates{
		3:             {epoch: 2, lastSeenMs: 77, batches: []producerBatch{{1, 4, 10, 13}, {5, 5, 14, 14}}},
		math.MaxInt64: {epoch: math.MaxInt16, lastSeenMs: -1},
	}
	b := encodeProducerSnapshot(ps, 99)
	got, off, err := decodeProducerSnapshot(b)
	if err != nil || off != 99 || fmt.Sprint(got[3], got[math.MaxInt64]) != fmt.Sprint(ps[3], ps[math.MaxInt64]) || len(got) != 2 {
		t.Fatalf("round trip: %v %d %v", got, off, err)
	}
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 0x01
		if _, _, err := decodeProducerSnapshot(c); err == nil {
			t.Errorf("flipped byte %d accepted", i)
		}
	}
	for n := range len(b) {
		if _, _, err := decodeProducerSnapshot(b[:n]); err == nil {
			t.Errorf("truncated to %d accepted", n)
		}
	}
}

func FuzzProducerSnapshot(f *testing.F) {
	f.Add(encodeProducerSnapshot(producerStates{3: {epoch: 2, batches: []producerBatch{{1, 4, 10, 13}}}}, 5))
	f.Add(encodeProducerSnapshot(producerStates{}, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, off, err := decodeProducerSnapshot(b)
		if err != nil {
			return
		}
		// Whatever decodes encodes back to the same bytes.
		if again := encodeProducerSnapshot(ps, off); string(again) != string(b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

// BenchmarkAppendProducer compares appending batches without a producer id
// and with one (checked against the producer's state): the difference is
// the broker-side cost of idempotence.
func BenchmarkAppendProducer(b *testing.B) {
	for _, idem := range []bool{false, true} {
		b.Run(fmt.Sprintf("idempotent=%v", idem), func(b *testing.B) {
			l := openLog(b, b.TempDir(), DefaultConfig(), 0, 0)
			defer l.Close()
			spec := batchSpec{records: make([][2][]byte, 10), ts: make([]int64, 10), pid: -1, epoch: -1, seq: -1}
			for i := range spec.records {
				spec.records[i] = kv("key", "value-of-a-typical-size")
			}
			if idem {
				spec.pid, spec.epoch, spec.seq = 1, 0, 0
			}
			data := buildBatch(spec)
			h, err := Validate(data)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				h.BaseSequence = int32(i * 10) // the CRC is not checked again by Append
				if _, err := l.Append([]Batch{{Data: data, Header: h}}, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
