package commitlog

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
)

// segmentedLog builds a log of n segments; segment i holds 3 batches of 2
// records with timestamps around i*1000, so its largest timestamp is
// i*1000+21.
func segmentedLog(t *testing.T, cfg Config, n int) (*Log, string) {
	t.Helper()
	dir := t.TempDir()
	l := openLog(t, dir, cfg, 0, 0)
	for i := 0; i < n; i++ {
		for j := int64(0); j < 3; j++ {
			ts := int64(i)*1000 + j*10
			appendOne(t, l, makeBatch([][2][]byte{kv("k", fmt.Sprint(i)), kv("k", "x")}, ts, allCodecs[j]))
		}
		if i < n-1 {
			if err := l.Roll(); err != nil {
				t.Fatal(err)
			}
		}
	}
	return l, dir
}

func segmentBases(l *Log) []int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []int64
	for _, s := range l.segments {
		out = append(out, s.base)
	}
	return out
}

func TestRetentionByTime(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RetentionMs = 1500
	l, dir := segmentedLog(t, cfg, 5) // bases 0 6 12 18 24, max ts 21 1021 2021 3021 4021
	defer l.Close()
	n, err := l.EnforceRetention(3500)
	if err != nil || n != 2 {
		t.Fatalf("deleted %d, %v", n, err)
	}
	if got := fmt.Sprint(segmentBases(l)); got != "[12 18 24]" || l.StartOffset() != 12 {
		t.Fatalf("segments %s, start %d", got, l.StartOffset())
	}
	for _, base := range []int64{0, 6} {
		if _, err := os.Stat(segPath(dir, base, ".log")); !os.IsNotExist(err) {
			t.Fatalf("segment %d still on disk: %v", base, err)
		}
	}
	if _, err := l.Read(11, 30, 100, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the new start: %v", err)
	}
	if recs := readRecords(t, l, 0); recs[0].off != 12 {
		t.Fatalf("first readable record %d", recs[0].off)
	}
	// Not before a segment is older than retention.ms; policy compact alone
	// keeps everything.
	c2 := cfg
	c2.Delete = false
	l.SetConfig(c2)
	if n, _ := l.EnforceRetention(1 << 40); n != 0 {
		t.Fatalf("compact-only log lost %d segments", n)
	}
	l.SetConfig(cfg)
	if n, _ := l.EnforceRetention(3521); n != 0 {
		t.Fatalf("deleted %d segments at the boundary", n)
	}
	// The active segment expires too: it is rolled and deleted, and the
	// log goes on from its end.
	if n, err := l.EnforceRetention(10_000); err != nil || n != 3 {
		t.Fatalf("deleted %d, %v", n, err)
	}
	if s, e := l.Offsets(); s != 30 || e != 30 {
		t.Fatalf("offsets %d-%d after deleting everything", s, e)
	}
	if base := appendOne(t, l, makeBatch([][2][]byte{kv("a", "b")}, 10_000, 0)); base != 30 {
		t.Fatalf("appended at %d", base)
	}
	if n, _ := l.EnforceRetention(10_000); n != 0 {
		t.Fatalf("deleted the fresh segment: %d", n)
	}
	l.Close()
	l = openLog(t, dir, cfg, 31, l.StartOffset())
	defer l.Close()
	if s, e := l.Offsets(); s != 30 || e != 31 {
		t.Fatalf("reopened offsets %d-%d", s, e)
	}
}

func TestRetentionBySize(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RetentionMs = -1
	l, _ := segmentedLog(t, cfg, 6)
	defer l.Close()
	size := l.Size()
	l.mu.RLock()
	seg0 := l.segments[0].size
	l.mu.RUnlock()
	// Kafka keeps a segment when deleting it would leave less than
	// retention.bytes.
	cfg.RetentionBytes = size - seg0 + 1
	l.SetConfig(cfg)
	if n, _ := l.EnforceRetention(0); n != 0 {
		t.Fatalf("deleted %d segments, want 0", n)
	}
	cfg.RetentionBytes = size - seg0
	l.SetConfig(cfg)
	if n, _ := l.EnforceRetention(0); n != 1 || l.StartOffset() != 6 {
		t.Fatalf("deleted %d, start %d", n, l.StartOffset())
	}
	cfg.RetentionBytes = 1
	l.SetConfig(cfg)
	if n, _ := l.EnforceRetention(0); n != 4 || fmt.Sprint(segmentBases(l)) != "[30]" {
		t.Fatalf("deleted %d, segments %v", n, segmentBases(l))
	}
	cfg.RetentionBytes = 0
	l.SetConfig(cfg)
	if n, _ := l.EnforceRetention(0); n != 1 || l.StartOffset() != 36 || l.Size() != 0 {
		t.Fatalf("retention.bytes=0 deleted %d, start %d, size %d", n, l.StartOffset(), l.Size())
	}
}

func TestRetentionStopsAtHighWatermark(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RetentionMs = 0
	l, _ := segmentedLog(t, cfg, 4) // bases 0 6 12 18
	defer l.Close()
	if n, _ := l.EnforceRetentionBelow(1<<40, 13); n != 2 || l.StartOffset() != 12 {
		t.Fatalf("deleted %d, start %d", n, l.StartOffset())
	}
}

func TestDeleteRecordsBefore(t *testing.T) {
	cfg := DefaultConfig()
	l, dir := segmentedLog(t, cfg, 4) // bases 0 6 12 18, end 24
	if s, err := l.DeleteRecordsBefore(3, -1); err != nil || s != 3 || len(segmentBases(l)) != 4 {
		t.Fatalf("start %d, %v, segments %v", s, err, segmentBases(l))
	}
	if _, err := l.Read(2, 24, 100, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	if o, _, ok, _ := l.OffsetForTimestamp(0); !ok || o != 3 {
		t.Fatalf("earliest by time is %d", o)
	}
	if s, err := l.DeleteRecordsBefore(13, 20); err != nil || s != 13 || fmt.Sprint(segmentBases(l)) != "[12 18]" {
		t.Fatalf("start %d, %v, segments %v", s, err, segmentBases(l))
	}
	if s, err := l.DeleteRecordsBefore(5, 20); err != nil || s != 13 {
		t.Fatalf("moving back: start %d, %v", s, err)
	}
	if _, err := l.DeleteRecordsBefore(21, 20); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("past the high watermark: %v", err)
	}
	if s, err := l.DeleteRecordsBefore(-1, 20); err != nil || s != 20 {
		t.Fatalf("-1: start %d, %v", s, err)
	}
	if s, err := l.DeleteRecordsBefore(-1, -1); err != nil || s != 24 || fmt.Sprint(segmentBases(l)) != "[18]" {
		t.Fatalf("to the end: start %d, %v, segments %v", s, err, segmentBases(l))
	}
	l.Close()
	l = openLog(t, dir, cfg, 24, 24)
	defer l.Close()
	if s, e := l.Offsets(); s != 24 || e != 24 {
		t.Fatalf("reopened %d-%d", s, e)
	}
}

// TestRetentionConcurrent runs retention and DeleteRecords against appends
// and readers; run it with -race.
func TestRetentionConcurrent(t *testing.T) {
	cfg := smallConfig()
	cfg.SegmentBytes = 2048
	cfg.RetentionMs = 50_000
	cfg.RetentionBytes = 16 << 10
	l := openLog(t, t.TempDir(), cfg, 0, 0)
	defer l.Close()
	var clock atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	const batches = 300
	wg.Add(1)
	go func() { // producer
		defer wg.Done()
		defer stop.Store(true)
		for i := 0; i < batches; i++ {
			ts := clock.Add(100)
			appendOne(t, l, makeBatch([][2][]byte{kv("k", fmt.Sprint(i)), kv("k", "y")}, ts, allCodecs[i%5]))
		}
	}()
	wg.Add(1)
	go func() { // retention and DeleteRecords
		defer wg.Done()
		for !stop.Load() {
			if _, err := l.EnforceRetention(clock.Load()); err != nil {
				t.Error(err)
			}
			if _, err := l.DeleteRecordsBefore(l.EndOffset()-300, -1); err != nil && !errors.Is(err, ErrOffsetOutOfRange) {
				t.Error(err)
			}
		}
	}()
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() { // consumers
			defer wg.Done()
			for !stop.Load() {
				start, end := l.Offsets()
				if end <= start {
					continue
				}
				s, err := l.Read(start, end, 1<<20, true)
				if errors.Is(err, ErrOffsetOutOfRange) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				buf := make([]byte, min(s.Size, HeaderSize))
				if _, err := s.File.ReadAt(buf, s.Pos); err != nil {
					t.Error(err)
					return
				}
				if h, err := ParseHeader(buf); err != nil || h.LastOffset() < start {
					t.Errorf("read at %d gave %+v, %v", start, h, err)
				}
				last := int64(-1)
				err = l.ReadBatches(start, func(_ []byte, h Header) bool {
					// A jump is fine only where the log start overtook the reader.
					if last >= 0 && h.BaseOffset != last+1 && l.StartOffset() <= last+1 {
						t.Errorf("gap after %d: %d", last, h.BaseOffset)
					}
					last = h.LastOffset()
					return true
				})
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if _, err := l.EnforceRetention(clock.Load()); err != nil {
		t.Fatal(err)
	}
	start, end := l.Offsets()
	if end != 2*batches {
		t.Fatalf("end %d", end)
	}
	bases := segmentBases(l)
	if start < bases[0] || l.Size() > cfg.RetentionBytes+cfg.SegmentBytes {
		t.Fatalf("start %d, segments %v, size %d", start, bases, l.Size())
	}
	if recs := readRecords(t, l, start); int64(len(recs)) < end-start {
		t.Fatalf("%d records readable in [%d, %d)", len(recs), start, end)
	}
}
