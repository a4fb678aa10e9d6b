package commitlog

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// TestCompactConcurrent compacts while a producer appends and consumers
// read; run it with -race.
func TestCompactConcurrent(t *testing.T) {
	cfg := compactConfig()
	cfg.SegmentBytes = 2048
	dir := t.TempDir()
	l := openLog(t, dir, cfg, 0, 0)
	var stop atomic.Bool
	var wg sync.WaitGroup
	last := map[string]string{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer stop.Store(true)
		for i := 0; i < 400; i++ {
			k, v := fmt.Sprintf("k%d", i%17), fmt.Sprintf("v%d", i)
			appendOne(t, l, makeBatch([][2][]byte{kv(k, v), kv("same", v)}, int64(i), allCodecs[i%5]))
			last[k], last["same"] = v, v
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if _, err := l.Compact(1 << 40); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			end := l.EndOffset()
			prev := int64(-1)
			for off := int64(0); off < end; {
				s, err := l.Read(off, end, 1<<20, true)
				if err != nil || s.Size == 0 {
					t.Errorf("Read(%d) below %d: %+v %v", off, end, s, err)
					return
				}
				buf := make([]byte, s.Size)
				s.File.ReadAt(buf, s.Pos)
				SplitBatches(buf[:wholeBatches(buf)], func(b []byte, h Header) error {
					if h.BaseOffset <= prev {
						t.Errorf("batch %d after %d", h.BaseOffset, prev)
					}
					prev, off = h.LastOffset(), h.LastOffset()+1
					return nil
				})
			}
		}
	}()
	wg.Wait()
	if _, err := l.Compact(1 << 40); err != nil {
		t.Fatal(err)
	}
	check := func(l *Log) {
		got, latest := map[string]string{}, map[string]int64{}
		recs := readRecords(t, l, 0)
		for _, r := range recs {
			got[r.key], latest[r.key] = r.value, r.off
		}
		if fmt.Sprint(got) != fmt.Sprint(last) {
			t.Fatalf("newest values %v, want %v", got, last)
		}
		active := segmentBases(l)[len(segmentBases(l))-1]
		for _, r := range recs {
			if r.off < active && latest[r.key] != r.off {
				t.Fatalf("superseded record %+v left outside the active segment", r)
			}
		}
	}
	check(l)
	l.Close()
	l = openLog(t, dir, cfg, 0, 0)
	defer l.Close()
	check(l)
}

// wholeBatches is how many leading bytes of buf hold whole batches.
func wholeBatches(buf []byte) int {
	n := 0
	for len(buf)-n >= HeaderSize {
		h, err := ParseHeader(buf[n:])
		if err != nil || int64(len(buf)-n) < h.Size() {
			break
		}
		n += int(h.Size())
	}
	return n
}

// TestCompactWithRetention runs compaction, retention and DeleteRecords
// against appends (compact,delete topics do); run it with -race. No segment
// file may be left behind or brought back.
func TestCompactWithRetention(t *testing.T) {
	cfg := compactConfig()
	cfg.Delete, cfg.SegmentBytes, cfg.RetentionBytes = true, 1024, 6<<10
	dir := t.TempDir()
	l := openLog(t, dir, cfg, 0, 0)
	defer l.Close()
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer stop.Store(true)
		for i := 0; i < 300; i++ {
			appendOne(t, l, makeBatch([][2][]byte{kv(fmt.Sprintf("k%d", i%7), fmt.Sprint(i))}, int64(i), allCodecs[i%5]))
		}
	}()
	for _, fn := range []func() error{
		func() error { _, err := l.Compact(1 << 40); return err },
		func() error { _, err := l.EnforceRetention(0); return err },
		func() error { _, err := l.DeleteRecordsBefore(l.EndOffset()/2, -1); return err },
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if err := fn(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	bases, _ := segmentFiles(t, dir)
	if fmt.Sprint(bases) != fmt.Sprint(segmentBases(l)) {
		t.Fatalf("files %v, segments %v", bases, segmentBases(l))
	}
	prev := int64(-1)
	l.ReadBatches(0, func(b []byte, h Header) bool {
		if _, err := Validate(b); err != nil || h.BaseOffset <= prev {
			t.Fatalf("batch %d after %d: %v", h.BaseOffset, prev, err)
		}
		prev = h.LastOffset()
		return true
	})
	if prev != 299 {
		t.Fatalf("last offset %d", prev)
	}
}
