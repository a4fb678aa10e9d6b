package commitlog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// idemBatch is an idempotent (non-transactional) batch of producer pid.
func idemBatch(pid int64, epoch int16, seq int32, n int) []byte {
	recs := make([][2][]byte, n)
	ts := make([]int64, n)
	for i := range recs {
		recs[i] = kv(fmt.Sprintf("i%d-%d", pid, seq+int32(i)), "v")
		ts[i] = 2000 + int64(i)
	}
	return buildBatch(batchSpec{records: recs, ts: ts, pid: pid, epoch: epoch, seq: seq})
}

// leaderWorkload appends to l, as a leader, a mix of plain, compressed,
// idempotent and transactional batches with commit and abort markers over
// leader epochs 1, 3 and 4, leaving producer 3's transaction open. It
// returns the last idempotent batch of producer 7, for retries.
func leaderWorkload(t *testing.T, l *Log) []byte {
	t.Helper()
	app := func(b []byte, epoch int32) {
		t.Helper()
		if _, err := l.Append([]Batch{toBatch(t, b)}, epoch); err != nil {
			t.Fatal(err)
		}
	}
	var last []byte
	seq := map[int64]int32{}
	for round := range 12 {
		epoch := int32(1)
		if round >= 5 {
			epoch = 3
		}
		app(makeBatch([][2][]byte{kv("p", strings.Repeat("x", 100))}, 1000, 0), epoch)
		app(makeBatch([][2][]byte{kv("z", strings.Repeat("y", 300)), kv("z", "w")}, 1000, kgo.CodecGzip), epoch)
		last = idemBatch(7, 0, int32(round*2), 2)
		app(last, epoch)
		app(tbatch(1, seq[1], 2), epoch)
		seq[1] += 2
		app(tbatch(2, seq[2], 3), epoch)
		seq[2] += 3
		app(controlBatch(1, 0, true, 1000), epoch)
		app(controlBatch(2, 0, false, 1000), epoch)
	}
	app(tbatch(3, 0, 2), 4)
	app(makeBatch([][2][]byte{kv("p", "tail")}, 1000, 0), 4)
	return last
}

// logBytes is every batch of l from offset from, concatenated, as a
// leader's fetch response carries them.
func logBytes(t *testing.T, l *Log, from int64) []byte {
	t.Helper()
	var out []byte
	if err := l.ReadBatches(from, func(b []byte, _ Header) bool {
		out = append(out, b...)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// replicate feeds data to l in fetch-sized pieces that cut batches, as a
// follower fetching with a small max bytes would.
func replicate(t *testing.T, l *Log, data []byte, piece int) {
	t.Helper()
	for len(data) > 0 {
		chunk := data[:min(piece, len(data))]
		n, err := l.AppendReplica(chunk)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			piece *= 2 // a batch bigger than the piece: fetch more
			continue
		}
		data = data[n:]
	}
}

// dirFiles reads the files of a closed log dir, but for producer
// snapshots, which hold broker clock times.
func dirFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), snapshotExt) {
			continue
		}
		out[e.Name()], err = os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func producersWithoutTimes(l *Log) []ProducerState {
	ps := l.Producers()
	for i := range ps {
		ps[i].LastSeenMs = 0
	}
	return ps
}

func TestAppendReplicaMirrorsLeader(t *testing.T) {
	cfg := smallConfig()
	cfg.SegmentBytes = 2048
	adir, bdir := t.TempDir(), t.TempDir()
	a := openLog(t, adir, cfg, 0, 0)
	b := openLog(t, bdir, cfg, 0, 0)
	retry := leaderWorkload(t, a)
	if len(a.segments) < 4 {
		t.Fatalf("only %d segments", len(a.segments))
	}
	replicate(t, b, logBytes(t, a, 0), 700)

	if b.EndOffset() != a.EndOffset() {
		t.Fatalf("follower end %d, leader %d", b.EndOffset(), a.EndOffset())
	}
	if got, want := b.LastStableOffset(), a.LastStableOffset(); got != want || want == a.EndOffset() {
		t.Errorf("follower LSO %d, leader %d (log end %d)", got, want, a.EndOffset())
	}
	if got, want := b.AbortedTransactions(0, b.EndOffset()), a.AbortedTransactions(0, a.EndOffset()); !slices.Equal(got, want) || len(want) != 12 {
		t.Errorf("follower aborted %v\nleader %v", got, want)
	}
	if got, want := producersWithoutTimes(b), producersWithoutTimes(a); !slices.Equal(got, want) {
		t.Errorf("follower producers %v\nleader %v", got, want)
	}
	if !slices.Equal(b.epochs.entries, a.epochs.entries) || b.LatestEpoch() != 4 {
		t.Errorf("follower epochs %v, leader %v", b.epochs.entries, a.epochs.entries)
	}
	if got, want := b.UnsyncedRecords(), a.UnsyncedRecords(); got != want {
		t.Errorf("follower counts %d records to flush, leader %d", got, want)
	}
	// A retried batch is a duplicate on both, at the same offset.
	offA, errA := a.Append([]Batch{toBatch(t, bytes.Clone(retry))}, 4)
	offB, errB := b.Append([]Batch{toBatch(t, bytes.Clone(retry))}, 4)
	if !errors.Is(errA, ErrDuplicateBatch) || !errors.Is(errB, ErrDuplicateBatch) || offA != offB {
		t.Errorf("retry: leader (%d, %v), follower (%d, %v), want the same duplicate", offA, errA, offB, errB)
	}
	// And a gap in the sequence is refused.
	bad := idemBatch(7, 0, 100, 1)
	if _, err := b.Append([]Batch{toBatch(t, bad)}, 4); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Errorf("follower took an out-of-order batch: %v", err)
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	af, bf := dirFiles(t, adir), dirFiles(t, bdir)
	if len(af) != len(bf) {
		t.Errorf("leader has %d files, follower %d", len(af), len(bf))
	}
	for name, want := range af {
		if got, ok := bf[name]; !ok || !bytes.Equal(got, want) {
			t.Errorf("follower's %s differs from the leader's (present %v, %d vs %d bytes)", name, ok, len(got), len(want))
		}
	}
}

func TestAppendReplicaRejects(t *testing.T) {
	a := openLog(t, t.TempDir(), smallConfig(), 0, 0)
	defer a.Close()
	for i := range 4 {
		appendEpochs(t, a, int32(i))
	}
	data := logBytes(t, a, 0)
	var sizes []int
	for rest := data; len(rest) > 0; {
		h, _ := ParseHeader(rest)
		sizes = append(sizes, int(h.Size()))
		rest = rest[h.Size():]
	}

	t.Run("partial trailing batch", func(t *testing.T) {
		for _, cut := range []int{1, HeaderSize - 1, HeaderSize + 1, sizes[2] - 1} {
			b := openLog(t, t.TempDir(), smallConfig(), 0, 0)
			n, err := b.AppendReplica(data[:sizes[0]+sizes[1]+cut])
			if err != nil || n != sizes[0]+sizes[1] || b.EndOffset() != 4 {
				t.Fatalf("cut %d into the third batch: n=%d err=%v end=%d", cut, n, err, b.EndOffset())
			}
			b.Close()
		}
	})
	t.Run("not contiguous", func(t *testing.T) {
		b := openLog(t, t.TempDir(), smallConfig(), 0, 0)
		defer b.Close()
		if n, err := b.AppendReplica(data[:sizes[0]+sizes[1]]); err != nil || n != sizes[0]+sizes[1] {
			t.Fatal(n, err)
		}
		end := b.EndOffset()
		third := data[sizes[0]+sizes[1] : sizes[0]+sizes[1]+sizes[2]]
		for _, c := range []struct {
			name string
			d    []byte
		}{
			{"again from the start", data},
			{"the last batch repeated", data[sizes[0] : sizes[0]+sizes[1]]},
			{"one batch twice", append(bytes.Clone(third), third...)}, // last: it appends one
		} {
			name, d := c.name, c.d
			n, err := b.AppendReplica(d)
			if !errors.Is(err, ErrNotContiguous) {
				t.Errorf("%s: err %v, want ErrNotContiguous", name, err)
			}
			if name == "one batch twice" {
				if n != sizes[2] {
					t.Errorf("%s: appended %d bytes, want the first copy's %d", name, n, sizes[2])
				}
				continue
			}
			if n != 0 || b.EndOffset() != end {
				t.Errorf("%s: appended %d bytes, log end %d, want %d", name, n, b.EndOffset(), end)
			}
		}
	})
	t.Run("corrupt CRC", func(t *testing.T) {
		b := openLog(t, t.TempDir(), smallConfig(), 0, 0)
		defer b.Close()
		d := bytes.Clone(data)
		d[sizes[0]+HeaderSize+2] ^= 0x40 // inside the second batch's records
		n, err := b.AppendReplica(d)
		if !errors.Is(err, ErrCorruptBatch) || n != sizes[0] || b.EndOffset() != 2 {
			t.Fatalf("n=%d err=%v end=%d, want the first batch only and ErrCorruptBatch", n, err, b.EndOffset())
		}
		d = bytes.Clone(data)
		d[offMagic] = 1
		if n, err := b.AppendReplica(d[sizes[0]:]); err != nil || n == 0 {
			t.Fatalf("the rest after a bad batch: n=%d err=%v", n, err)
		}
		b2 := openLog(t, t.TempDir(), smallConfig(), 0, 0)
		defer b2.Close()
		if _, err := b2.AppendReplica(d); !errors.Is(err, ErrCorruptBatch) {
			t.Fatalf("magic 1: %v", err)
		}
	})
}

// A compacted leader's log has gaps between batches; a follower copies it
// with the same gaps.
func TestAppendReplicaAcrossCompactionGap(t *testing.T) {
	a := openLog(t, t.TempDir(), smallConfig(), 0, 0)
	defer a.Close()
	appendEpochs(t, a, 1, 1, 1)
	data := logBytes(t, a, 0)
	h0, _ := ParseHeader(data)
	b := openLog(t, t.TempDir(), smallConfig(), 0, 0)
	defer b.Close()
	n, err := b.AppendReplica(data[h0.Size():]) // starts at offset 2
	if err != nil || n != len(data)-int(h0.Size()) || b.EndOffset() != 6 {
		t.Fatalf("n=%d err=%v end=%d", n, err, b.EndOffset())
	}
	if got := readRecords(t, b, 0); len(got) != 4 || got[0].off != 2 {
		t.Fatalf("records %v", got)
	}
}
