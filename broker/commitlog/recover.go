package commitlog

import (
	"errors"
	"fmt"
	"math"
	"os"
	"time"
)

// recover opens the segments found on disk. Segments that end before the
// recovery point were fsynced at roll time: their indexes are loaded (or
// rebuilt when missing or inconsistent) and only the tail after the last
// index entry is walked to find the segment's end. From the segment holding
// the recovery point on, every batch past the recovery point is re-validated;
// the log is truncated at the first bad batch and later segments are
// removed.
func (l *Log) recover(bases []int64, recoveryPoint int64) error {
	cfg := l.cfg.Load()
	for i, base := range bases {
		f, err := os.OpenFile(segPath(l.dir, base, ".log"), os.O_RDWR, 0o644)
		if err != nil {
			return fmt.Errorf("open segment %d: %w", base, err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return fmt.Errorf("stat segment %d: %w", base, err)
		}
		seg := &segment{dir: l.dir, base: base, f: f, next: base, maxTs: -1}
		l.segments = append(l.segments, seg)

		trusted := i+1 < len(bases) && bases[i+1] <= recoveryPoint
		verifyFrom := int64(math.MaxInt64)
		from := int64(0)
		if trusted {
			if idx, err := readIndexes(l.dir, base, st.Size()); err == nil && len(idx) > 0 && seg.indexMatches(idx, st.Size()) {
				seg.idx = idx
				last := idx[len(idx)-1]
				from = int64(last.pos)
				seg.maxTs = last.maxTs
			} else {
				seg.indexesDirty = true
			}
		} else {
			verifyFrom = max(recoveryPoint, 0)
			seg.indexesDirty = true
		}
		prevNext := int64(-1)
		end, scanErr := seg.scan(from, verifyFrom, func(h *Header, pos int64) error {
			if h.BaseOffset < base || h.BaseOffset < prevNext {
				return fmt.Errorf("%w: batch at %d has offset %d below %d", ErrCorrupt, pos, h.BaseOffset, max(base, prevNext))
			}
			prevNext = h.LastOffset() + 1
			if pos == from && from > 0 {
				// The batch at 'from' is the last indexed one: account for
				// it without adding its entry again.
				seg.sinceIndex = math.MinInt64 / 2
				seg.track(h, pos, h.Size(), cfg.IndexIntervalBytes)
				seg.sinceIndex = h.Size()
				return nil
			}
			seg.track(h, pos, h.Size(), cfg.IndexIntervalBytes)
			return nil
		})
		if from > 0 && end == from && scanErr == nil && st.Size() > from {
			scanErr = fmt.Errorf("%w: empty scan at indexed position %d", ErrCorrupt, from)
		}
		if scanErr == nil && end == st.Size() {
			if trusted {
				seg.synced = seg.size
			} // else nobody fsynced this tail: the next Flush must
			l.next = seg.next
			continue
		}
		if scanErr != nil && !errors.Is(scanErr, ErrCorrupt) && !errors.Is(scanErr, ErrUnsupportedMag) {
			return fmt.Errorf("recover segment %d: %w", base, scanErr)
		}
		if trusted {
			// Below the recovery point everything was fsynced: damage here
			// is not a torn tail, and cutting it would drop every later
			// segment with it. Refuse rather than lose acknowledged data.
			return fmt.Errorf("segment %d is damaged at byte %d below the recovery point %d (%v): refusing to truncate fsynced data; inspect or remove the partition directory", base, end, recoveryPoint, scanErr)
		}
		l.logger.Warn("truncating corrupt log tail", "segment", base, "position", end, "size", st.Size(), "err", scanErr)
		if end == 0 {
			seg.next, seg.maxTs = base, -1
		}
		if err := seg.truncateTo(end, seg.next); err != nil {
			return err
		}
		if err := seg.f.Sync(); err != nil {
			return fmt.Errorf("fsync truncated segment %d: %w", base, err)
		}
		seg.synced = seg.size
		l.next = seg.next
		for _, later := range bases[i+1:] {
			removeSegmentFiles(l.dir, later)
		}
		if i+1 < len(bases) {
			// Were the removals lost in another crash, the old segments
			// would come back after offsets reused by new appends.
			if err := syncDir(l.dir); err != nil {
				return err
			}
		}
		break
	}
	for _, s := range l.segments {
		if err := s.writeIndexes(false); err != nil {
			return err
		}
	}
	// The active segment's age for segment.ms counts from this start: its
	// first append happened in an earlier run whose clock we do not keep.
	if a := l.active(); a.size > 0 {
		a.firstAppend = time.Now()
	}
	return nil
}

// indexMatches spot-checks a loaded index against the segment: the first,
// the last and a few entries between must point at a batch header whose
// last offset is the entry's and whose max timestamp the entry covers.
// Recovery scans on from the last entry without verifying CRCs, so an index
// that is well-formed but wrong (garbage, or left from an older file) would
// otherwise make it cut fsynced data at a bogus position.
func (s *segment) indexMatches(idx []indexEntry, fileSize int64) bool {
	const samples = 16
	step := max(len(idx)/samples, 1)
	for i := 0; i < len(idx); i += step {
		if !s.entryMatches(idx[i], fileSize) {
			return false
		}
	}
	return s.entryMatches(idx[len(idx)-1], fileSize)
}

func (s *segment) entryMatches(e indexEntry, fileSize int64) bool {
	h, err := s.readHeaderAt(int64(e.pos))
	return err == nil && h.LastOffset() == s.base+int64(e.relOffset) &&
		int64(e.pos)+h.Size() <= fileSize && e.maxTs >= h.MaxTimestamp
}
