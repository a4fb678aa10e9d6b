package commitlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// crashed is a log that crashedLog builds once and copies for each test.
var crashed struct {
	once  sync.Once
	files map[string][]byte
	rp    int64
	w     workload
}

// crashedLog returns a copy of a log that had a workload appended over many
// segments, was fsynced half-way (the checkpointed recovery point), then
// got the rest appended and fsynced, and was abandoned without Close, as a
// crash would leave it: the active segment's index was never written.
func crashedLog(t *testing.T) (dir string, rp int64, w workload) {
	t.Helper()
	crashed.once.Do(func() {
		src, err := os.MkdirTemp("", "commitlog-crash")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(src)
		l := openLog(t, src, smallConfig(), 0, 0)
		appendWorkload(t, l, &crashed.w, 90, 5)
		if err := l.Flush(); err != nil {
			t.Fatal(err)
		}
		crashed.rp = l.DurableOffset()
		appendWorkload(t, l, &crashed.w, 90, 6)
		if err := l.Flush(); err != nil {
			t.Fatal(err)
		}
		if len(l.segments) < 6 {
			t.Fatalf("only %d segments", len(l.segments))
		}
		crashed.files = map[string][]byte{}
		ents, _ := os.ReadDir(src)
		for _, e := range ents {
			crashed.files[e.Name()], _ = os.ReadFile(filepath.Join(src, e.Name()))
		}
		l.closeFiles() // the files stay as the crash left them
	})
	if crashed.files == nil {
		t.Fatal("no crashed log template")
	}
	dir = t.TempDir()
	for name, b := range crashed.files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, crashed.rp, crashed.w
}

type filePos struct {
	base, pos int64
	h         Header
}

// segmentFiles lists the segment bases in dir and every batch in them.
func segmentFiles(t *testing.T, dir string) ([]int64, []filePos) {
	t.Helper()
	bases, _, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []filePos
	for _, base := range bases {
		b, err := os.ReadFile(segPath(dir, base, ".log"))
		if err != nil {
			t.Fatal(err)
		}
		for pos := int64(0); pos+HeaderSize <= int64(len(b)); {
			h, err := ParseHeader(b[pos:])
			if err != nil {
				break
			}
			out = append(out, filePos{base, pos, h})
			pos += h.Size()
		}
	}
	return bases, out
}

func lastSegment(t *testing.T, dir string) int64 {
	bases, _ := segmentFiles(t, dir)
	return bases[len(bases)-1]
}

func appendToFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func flipByte(t *testing.T, path string, pos int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[pos] ^= 0x5a
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkRecovered opens dir after a crash and checks that exactly want
// survives, that appends continue densely, and that a clean restart keeps
// it all.
func checkRecovered(t *testing.T, dir string, rp int64, want [][]byte) {
	t.Helper()
	want = append([][]byte(nil), want...) // the caller's slice may be shared
	var wantEnd int64
	if len(want) > 0 {
		h, _ := ParseHeader(want[len(want)-1])
		wantEnd = h.LastOffset() + 1
	}
	l := openLog(t, dir, smallConfig(), rp, 0)
	if end := l.EndOffset(); end != wantEnd {
		t.Fatalf("end offset %d, want %d", end, wantEnd)
	}
	var got [][]byte
	if err := l.ReadBatches(0, func(b []byte, _ Header) bool { got = append(got, b); return true }); err != nil {
		t.Fatal(err)
	}
	sameBatches(t, got, want)
	sameBatches(t, fetchAll(t, l, 0, wantEnd, 3000), want)
	if _, err := l.Read(wantEnd+1, wantEnd+10, 1<<20, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read past the recovered end: %v", err)
	}
	if s, err := l.Read(wantEnd, wantEnd+10, 1<<20, true); err != nil || s.Size != 0 {
		t.Fatalf("read at the recovered end: %+v %v", s, err)
	}
	checkTimestamps(t, l, want)
	for i := int64(0); i < 3; i++ {
		b := makeBatch([][2][]byte{kv("new", "x"), kv("new", "y")}, 2_000_000+i, allCodecs[i])
		if base := appendOne(t, l, b); base != wantEnd+2*i {
			t.Fatalf("append after recovery at %d, want %d", base, wantEnd+2*i)
		}
		want = append(want, b)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, smallConfig(), wantEnd+6, 0)
	defer l.Close()
	sameBatches(t, fetchAll(t, l, 0, wantEnd+6, 1<<20), want)
}

func TestRecoverTornTails(t *testing.T) {
	cases := []struct {
		name    string
		damage  func(t *testing.T, dir string, w workload)
		dropped int // batches lost at the end
	}{
		{"clean crash", func(*testing.T, string, workload) {}, 0},
		{"half a batch", func(t *testing.T, dir string, w workload) {
			b := makeBatch([][2][]byte{kv("torn", "tail")}, 5, 0)
			stamp(b, int64(len(w.recs)), 3)
			appendToFile(t, segPath(dir, lastSegment(t, dir), ".log"), b[:len(b)/2])
		}, 0},
		{"half a header", func(t *testing.T, dir string, w workload) {
			appendToFile(t, segPath(dir, lastSegment(t, dir), ".log"), w.batches[0][:HeaderSize/2])
		}, 0},
		{"zeroed tail", func(t *testing.T, dir string, _ workload) {
			appendToFile(t, segPath(dir, lastSegment(t, dir), ".log"), make([]byte, 4096))
		}, 0},
		{"flipped byte in last batch", func(t *testing.T, dir string, w workload) {
			path := segPath(dir, lastSegment(t, dir), ".log")
			st, _ := os.Stat(path)
			last := w.batches[len(w.batches)-1]
			flipByte(t, path, st.Size()-int64(len(last))+int64(len(last))*2/3)
		}, 1},
		{"last batch cut short", func(t *testing.T, dir string, _ workload) {
			path := segPath(dir, lastSegment(t, dir), ".log")
			st, _ := os.Stat(path)
			os.Truncate(path, st.Size()-3)
		}, 1},
		{"missing index of the active segment", func(t *testing.T, dir string, _ workload) {
			base := lastSegment(t, dir)
			os.WriteFile(indexPath(dir, base), bytes.Repeat([]byte{0, 0, 0, 9, 0, 0, 1, 0}, 3), 0o644)
			if err := os.Remove(indexPath(dir, base)); err != nil {
				t.Fatal(err)
			}
		}, 0},
		{"missing indexes everywhere", func(t *testing.T, dir string, _ workload) {
			bases, _ := segmentFiles(t, dir)
			for _, b := range bases {
				os.Remove(indexPath(dir, b))
				os.Remove(timeIndexPath(dir, b))
			}
		}, 0},
		{"garbage indexes", func(t *testing.T, dir string, _ workload) {
			rng := rand.New(rand.NewSource(1))
			bases, _ := segmentFiles(t, dir)
			for _, b := range bases {
				g := make([]byte, 8*(1+rng.Intn(20)))
				rng.Read(g)
				os.WriteFile(indexPath(dir, b), g, 0o644)
			}
		}, 0},
		{"plausible but wrong indexes", func(t *testing.T, dir string, _ workload) {
			// Ordered entries inside the file that point between batches:
			// recovery must not trust them and cut fsynced data.
			bases, _ := segmentFiles(t, dir)
			for _, b := range bases {
				var g []byte
				for i := uint32(1); i <= 5; i++ {
					g = binary.BigEndian.AppendUint32(g, i)
					g = binary.BigEndian.AppendUint32(g, 100*i+7)
				}
				os.WriteFile(indexPath(dir, b), g, 0o644)
			}
		}, 0},
		{"garbage time index", func(t *testing.T, dir string, _ workload) {
			bases, _ := segmentFiles(t, dir)
			for _, b := range bases {
				os.WriteFile(timeIndexPath(dir, b), bytes.Repeat([]byte{0xff}, 24), 0o644)
			}
		}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, rp, w := crashedLog(t)
			c.damage(t, dir, w)
			checkRecovered(t, dir, rp, w.batches[:len(w.batches)-c.dropped])
		})
	}
}

func TestRecoverMiddleSegmentCorruption(t *testing.T) {
	dir, rp, w := crashedLog(t)
	bases, batches := segmentFiles(t, dir)
	// The second segment starting after the recovery point, in its middle.
	var victim int64 = -1
	for i, b := range bases[:len(bases)-1] {
		if b >= rp && i+2 < len(bases) {
			victim = bases[i+1]
			break
		}
	}
	var inVictim []int
	for i, fp := range batches {
		if fp.base == victim {
			inVictim = append(inVictim, i)
		}
	}
	if victim < 0 || len(inVictim) < 3 {
		t.Fatalf("no suitable middle segment (rp %d, bases %v)", rp, bases)
	}
	bad := batches[inVictim[len(inVictim)/2]]
	flipByte(t, segPath(dir, victim, ".log"), bad.pos+HeaderSize+3)

	keep := 0
	for keep < len(w.batches) {
		if h, _ := ParseHeader(w.batches[keep]); h.BaseOffset >= bad.h.BaseOffset {
			break
		}
		keep++
	}
	l := openLog(t, dir, smallConfig(), rp, 0)
	if end := l.EndOffset(); end != bad.h.BaseOffset {
		t.Fatalf("end %d, want %d", end, bad.h.BaseOffset)
	}
	l.mu.RLock()
	nseg, active := len(l.segments), l.active().base
	l.mu.RUnlock()
	if active != victim {
		t.Fatalf("active segment %d, want the damaged %d", active, victim)
	}
	for _, b := range bases {
		_, err := os.Stat(segPath(dir, b, ".log"))
		if (b > victim) != os.IsNotExist(err) {
			t.Fatalf("segment %d: stat %v (victim %d)", b, err, victim)
		}
	}
	if nseg != len(bases)-(len(bases)-1-indexOf(bases, victim)) {
		t.Fatalf("%d segments open", nseg)
	}
	l.Close()
	checkRecovered(t, dir, rp, w.batches[:keep])
}

// TestRecoverBeforeRecoveryPoint checks that a zero recovery point verifies
// every batch and that leftovers of an interrupted compaction go away.
func TestRecoverLeftovers(t *testing.T) {
	dir, _, w := crashedLog(t)
	os.WriteFile(filepath.Join(dir, "00000000000000000000.log.cleaned"), []byte("half-written"), 0o644)
	os.WriteFile(filepath.Join(dir, "00000000000000000000.index.cleaned"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "not-a-segment.log"), nil, 0o644)
	checkRecovered(t, dir, 0, w.batches)
	if _, err := os.Stat(filepath.Join(dir, "00000000000000000000.log.cleaned")); !os.IsNotExist(err) {
		t.Fatalf("leftover .cleaned kept: %v", err)
	}
}

func indexOf(s []int64, v int64) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}
