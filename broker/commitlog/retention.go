package commitlog

import (
	"fmt"
)

// EnforceRetention deletes old segments as Kafka's log cleaner does for
// cleanup.policy=delete (cfg.Delete): first every segment, oldest first,
// whose largest timestamp is more than RetentionMs before nowMs, then the
// oldest segments while the log stays at least RetentionBytes large without
// them. Whatever the policy, segments wholly below the log start offset
// (moved by DeleteRecordsBefore or a checkpoint) go too. When the active
// segment itself qualifies and holds data, it is rolled first so it can go.
// The log start offset moves to the first remaining segment.
func (l *Log) EnforceRetention(nowMs int64) (deletedSegments int, err error) {
	return l.EnforceRetentionBelow(nowMs, -1)
}

// EnforceRetentionBelow is EnforceRetention that keeps every segment holding
// an offset at or past hw, so the log start offset never passes the high
// watermark (Kafka's rule for replicated partitions). hw -1 means the log
// end.
func (l *Log) EnforceRetentionBelow(nowMs, hw int64) (deletedSegments int, err error) {
	cfg := l.cfg.Load()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, nil
	}
	if hw < 0 || hw > l.next {
		hw = l.next
	}
	segs := l.segments
	// deletable reports whether segment i may go at all: everything in it
	// is below hw, and the last segment goes only when it holds data.
	deletable := func(i int) bool {
		if i+1 == len(segs) {
			return segs[i].size > 0 && l.next <= hw
		}
		return segs[i+1].base <= hw
	}
	n := 0
	for n < len(segs)-1 && segs[n+1].base <= l.start {
		n++ // wholly below the log start offset
	}
	if cfg.Delete && cfg.RetentionMs >= 0 {
		for n < len(segs) && deletable(n) && nowMs-segs[n].largestTimestamp() > cfg.RetentionMs {
			n++
		}
	}
	if cfg.Delete && cfg.RetentionBytes >= 0 {
		diff := -cfg.RetentionBytes
		for _, s := range segs[n:] {
			diff += s.size
		}
		for n < len(segs) && deletable(n) && diff-segs[n].size >= 0 {
			diff -= segs[n].size
			n++
		}
	}
	removed, err := l.dropSegments(n)
	l.mu.Unlock()
	for _, s := range removed {
		s.remove()
	}
	return len(removed), err
}

// dropSegments takes the first n segments out of the log, rolling first
// when that includes the active one, and moves the log start offset to the
// first segment left. The caller holds l.mu and removes the returned
// segments' files once it has released it.
func (l *Log) dropSegments(n int) ([]*segment, error) {
	if n == 0 {
		return nil, nil
	}
	if n == len(l.segments) {
		if err := l.roll(); err != nil {
			return nil, fmt.Errorf("roll before deleting every segment: %w", err)
		}
	}
	removed := append([]*segment(nil), l.segments[:n]...)
	l.segments = append([]*segment(nil), l.segments[n:]...)
	l.start = max(l.start, l.segments[0].base)
	l.dropAbortedBelow(l.segments[0].base)
	l.trimEpochsToStart()
	l.dirDirty.Store(true)
	for _, s := range removed {
		l.logger.Info("deleting segment", "segment", s.base, "next", s.next, "size", s.size)
	}
	return removed, nil
}

// largestTimestamp is what time-based retention compares: the largest
// record timestamp, or the file's modification time when no batch carried
// one (Kafka's rule). Callers hold the Log's mutex.
func (s *segment) largestTimestamp() int64 {
	if s.maxTs >= 0 {
		return s.maxTs
	}
	if st, err := s.f.Stat(); err == nil {
		return st.ModTime().UnixMilli()
	}
	return -1
}

// DeleteRecordsBefore moves the log start offset forward to offset (Kafka's
// DeleteRecords): records below it are no longer readable, and segments
// wholly below it are deleted. offset -1 means hw, the high watermark, which
// the new start may not pass (hw -1 means the log end). An offset below the
// current start changes nothing. It returns the log start offset (the low
// watermark DeleteRecords answers with).
func (l *Log) DeleteRecordsBefore(offset, hw int64) (newStart int64, err error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, fmt.Errorf("log closed")
	}
	if hw < 0 || hw > l.next {
		hw = l.next
	}
	if offset == -1 {
		offset = hw
	}
	if offset < 0 || offset > hw {
		start := l.start
		l.mu.Unlock()
		return start, fmt.Errorf("%w: delete records before %d, high watermark %d", ErrOffsetOutOfRange, offset, hw)
	}
	l.start = max(l.start, offset)
	n := 0
	for n < len(l.segments)-1 && l.segments[n+1].base <= l.start {
		n++
	}
	removed, err := l.dropSegments(n)
	l.trimEpochsToStart()
	start := l.start
	l.mu.Unlock()
	for _, s := range removed {
		s.remove()
	}
	return start, err
}
