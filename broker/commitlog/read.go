package commitlog

import (
	"fmt"
	"os"
	"sort"
)

// Slice is a byte range of a segment file holding whole batches (the last one
// may be cut by a byte limit, as Kafka does). The broker serves it with
// sendfile.
type Slice struct {
	File *os.File
	Pos  int64
	Size int64
}

// segmentFor returns the index of the segment that serves offset: the one
// holding it, or, when compaction removed it, the first later one with a
// batch; -1 when offset is below the first segment. Callers hold l.mu.
func (l *Log) segmentFor(offset int64) int {
	i := sort.Search(len(l.segments), func(i int) bool { return l.segments[i].base > offset }) - 1
	for i >= 0 && i+1 < len(l.segments) && (offset >= l.segments[i].next || l.segments[i].size == 0) {
		i++ // a gap left by compaction, or a segment it emptied
	}
	return i
}

// Read returns the batches holding offsets from offset up to (excluding)
// maxOffset, at most maxBytes long. With minOne, the first batch is returned
// whole even when it is larger than maxBytes (KIP-74). A read never crosses
// a segment boundary: the caller fetches again from the returned end.
func (l *Log) Read(offset, maxOffset, maxBytes int64, minOne bool) (Slice, error) {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return Slice{}, ErrClosed
	}
	if offset < l.start || offset > l.next {
		start, next := l.start, l.next
		l.mu.RUnlock()
		return Slice{}, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, offset, start, next)
	}
	if offset >= maxOffset {
		l.mu.RUnlock()
		return Slice{}, nil
	}
	i := l.segmentFor(offset)
	if i < 0 {
		l.mu.RUnlock()
		return Slice{}, nil
	}
	seg := l.segments[i]
	f, segEnd, segNext := seg.f, seg.size, seg.next
	pos := lookupOffset(seg.idx, uint32(max(offset-seg.base, 0)))
	l.mu.RUnlock()

	// Find the first batch whose last offset reaches offset.
	var first Header
	for ; pos < segEnd; pos += first.Size() {
		h, err := seg.readHeaderAt(pos)
		if err != nil {
			return Slice{}, err
		}
		first = h
		if h.LastOffset() >= offset {
			break
		}
	}
	if pos >= segEnd || first.BaseOffset >= maxOffset {
		return Slice{}, nil
	}
	end := segEnd
	if maxOffset < segNext {
		// The high watermark sits inside this segment: stop before it.
		for p := pos; p < segEnd; {
			h, err := seg.readHeaderAt(p)
			if err != nil {
				return Slice{}, err
			}
			if h.BaseOffset >= maxOffset {
				break
			}
			p += h.Size()
			end = p
		}
	}
	size := end - pos
	if size > maxBytes {
		size = max(maxBytes, 0)
		if minOne && size < first.Size() {
			size = min(first.Size(), end-pos)
		}
	}
	return Slice{File: f, Pos: pos, Size: size}, nil
}

// ReadBatches calls fn with each whole batch from offset on, in order, until
// fn returns false or the log end is reached. Internal readers (timestamp
// lookups, compaction, tests) use it; fetches use Read.
func (l *Log) ReadBatches(offset int64, fn func(b []byte, h Header) bool) error {
	for {
		l.mu.RLock()
		if offset >= l.next {
			l.mu.RUnlock()
			return nil
		}
		offset = max(offset, l.start)
		i := l.segmentFor(offset)
		seg := l.segments[i]
		f, end, next := seg.f, seg.size, seg.next
		pos := lookupOffset(seg.idx, uint32(max(offset-seg.base, 0)))
		l.mu.RUnlock()
		for pos < end {
			h, err := seg.readHeaderAt(pos)
			if err != nil {
				return err
			}
			if h.LastOffset() >= offset {
				b := make([]byte, h.Size())
				if _, err := f.ReadAt(b, pos); err != nil {
					return fmt.Errorf("read batch at %d: %w", pos, err)
				}
				if !fn(b, h) {
					return nil
				}
			}
			pos += h.Size()
		}
		if next <= offset {
			return nil
		}
		offset = next
	}
}

// OffsetForTimestamp returns the first offset whose record timestamp is at or
// after ts, with that timestamp; ok is false when no record qualifies.
func (l *Log) OffsetForTimestamp(ts int64) (offset, recordTs int64, ok bool, err error) {
	l.mu.RLock()
	var from int64 = -1
	for _, s := range l.segments {
		if s.maxTs >= ts && s.next > l.start {
			from = max(s.base, l.start)
			if p := lookupTime(s.idx, ts); p > 0 {
				h, herr := s.readHeaderAt(p)
				if herr == nil {
					from = max(h.BaseOffset, l.start)
				}
			}
			break
		}
	}
	start := l.start
	l.mu.RUnlock()
	if from < 0 {
		return 0, 0, false, nil
	}
	err = l.ReadBatches(from, func(b []byte, h Header) bool {
		if h.MaxTimestamp < ts {
			return true
		}
		offset, recordTs, ok = firstRecordAtOrAfter(b, h, ts, start)
		return !ok
	})
	return offset, recordTs, ok, err
}

// MaxTimestamp returns the offset and timestamp of the record with the
// largest timestamp (ListOffsets with timestamp -3), or -1, -1 when the log
// holds no record with a timestamp.
func (l *Log) MaxTimestamp() (offset, ts int64, err error) {
	l.mu.RLock()
	start := l.start
	best, headEnd := int64(-1), int64(-1)
	for _, s := range l.segments {
		switch {
		case s.next <= start:
		case s.base < start:
			headEnd = s.next // part of it lies below the start: look inside
		case s.maxTs > best:
			best = s.maxTs
		}
	}
	l.mu.RUnlock()
	if headEnd > 0 {
		err = l.ReadBatches(start, func(b []byte, h Header) bool {
			if h.BaseOffset >= headEnd {
				return false
			}
			if h.MaxTimestamp > best {
				best = max(best, maxTimestampFrom(b, h, start))
			}
			return true
		})
		if err != nil {
			return -1, -1, err
		}
	}
	if best < 0 {
		return -1, -1, nil
	}
	offset, ts, ok, err := l.OffsetForTimestamp(best)
	if err != nil || !ok {
		return -1, -1, err
	}
	return offset, ts, nil
}

// maxTimestampFrom is the largest timestamp of a batch's records at or
// after offset start.
func maxTimestampFrom(b []byte, h Header, start int64) int64 {
	if h.BaseOffset >= start || h.Attributes&AttrLogAppendTime != 0 {
		return h.MaxTimestamp
	}
	recs, err := DecodeRecords(b)
	if err != nil {
		return h.MaxTimestamp
	}
	best := int64(-1)
	for _, r := range recs {
		if h.BaseOffset+int64(r.OffsetDelta) >= start {
			best = max(best, h.BaseTimestamp+r.TimestampDelta64)
		}
	}
	return best
}

// firstRecordAtOrAfter looks inside a batch for the first record at or after
// ts (and not below the log start offset).
func firstRecordAtOrAfter(b []byte, h Header, ts, start int64) (int64, int64, bool) {
	if h.Attributes&AttrLogAppendTime != 0 {
		return max(h.BaseOffset, start), h.MaxTimestamp, true
	}
	recs, err := DecodeRecords(b)
	if err != nil {
		return max(h.BaseOffset, start), h.MaxTimestamp, true
	}
	for _, r := range recs {
		o := h.BaseOffset + int64(r.OffsetDelta)
		rts := h.BaseTimestamp + r.TimestampDelta64
		if rts >= ts && o >= start {
			return o, rts, true
		}
	}
	return 0, 0, false
}
