package commitlog

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestTruncateConcurrent truncates and re-replicates a follower's log while
// readers fetch, a flusher fsyncs and compaction runs; run it with -race.
// Every fetch answers valid batches at increasing offsets, each holding
// the record its offset was given in some generation of the log, or a
// clean out-of-range error.
func TestTruncateConcurrent(t *testing.T) {
	cfg := compactConfig()
	cfg.SegmentBytes = 1024
	// Two leaders' histories with the same offsets but batches of other
	// sizes: a follower switching between them after each cut would hand
	// a reader mixed bytes if a range it holds were overwritten.
	var leaders [2]*Log
	for g := range leaders {
		leaders[g] = openLog(t, t.TempDir(), cfg, 0, 0)
		defer leaders[g].Close()
		for i := range 200 {
			v := fmt.Sprint(i) + strings.Repeat("-", g*(i%7))
			appendOne(t, leaders[g], makeBatch([][2][]byte{kv(fmt.Sprintf("k%d", i%13), v)}, int64(i), allCodecs[i%5]))
		}
	}
	leader := leaders[0]
	data := logBytes(t, leader, 0)
	l := openLog(t, t.TempDir(), cfg, 0, 0)
	defer l.Close()
	if _, err := l.AppendReplica(data); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer stop.Store(true)
		for i := range 12 {
			cut := int64(i*37) % 200
			if err := l.TruncateTo(cut); err != nil {
				t.Error(err)
				return
			}
			if got := l.EndOffset(); got > cut {
				t.Errorf("end %d after truncating to %d", got, cut)
				return
			}
			// The leader's bytes from the cut on (every batch is one record;
			// a cut in a compaction gap ends the log below it).
			rest := logBytes(t, leaders[(i+1)%2], cut)
			if _, err := l.AppendReplica(rest); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				end := l.EndOffset()
				prev := int64(-1)
				for off := int64(0); off < end; {
					s, err := l.Read(off, end, 1<<20, true)
					if errors.Is(err, ErrOffsetOutOfRange) {
						break // cut under us
					}
					if err != nil {
						t.Errorf("Read(%d): %v", off, err)
						return
					}
					if s.Size == 0 {
						break
					}
					time.Sleep(3 * time.Millisecond) // a sendfile to a slow client
					buf := make([]byte, s.Size)
					if _, err := s.File.ReadAt(buf, s.Pos); err != nil {
						t.Errorf("read range: %v", err)
						return
					}
					err = SplitBatches(buf[:wholeBatches(buf)], func(b []byte, h Header) error {
						if h.BaseOffset <= prev {
							return fmt.Errorf("batch %d after %d", h.BaseOffset, prev)
						}
						recs, err := DecodeRecords(b)
						if err != nil || len(recs) != 1 || strings.TrimRight(string(recs[0].Value), "-") != fmt.Sprint(h.BaseOffset) {
							return fmt.Errorf("batch %d holds %v (%v)", h.BaseOffset, recs, err)
						}
						prev, off = h.LastOffset(), h.LastOffset()+1
						return nil
					})
					if err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if err := l.Flush(); err != nil {
				t.Error(err)
				return
			}
			if _, err := l.Compact(1 << 40); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond) // a flusher's pace, not a spin
		}
	}()
	wg.Wait()
	if d := l.DurableOffset(); d > l.EndOffset() {
		t.Fatalf("durable offset %d past the end %d", d, l.EndOffset())
	}
}
