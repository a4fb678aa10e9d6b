package commitlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"sync/atomic"
)

// Truncation, for a follower whose log diverged from its new leader's
// (TruncateTo) or fell behind the leader's log start (TruncateFullyAndStartAt).
//
// Fetches may be serving the segments being cut, by sendfile over byte
// ranges captured earlier. A segment is therefore never cut in place,
// where later appends would overwrite bytes those ranges still cover: the
// part kept is copied to a new file renamed over the old one, and removed
// or replaced descriptors are closed after a delay (closeLater), as
// compaction does. Such a fetch answers with the log as it was when it
// started. The removals are made durable before the call returns, so that
// no crash brings the removed records back.

// truncatedExt is the suffix of a segment copy being made by TruncateTo;
// a leftover is removed on open.
const truncatedExt = ".truncated"

// TruncateTo removes every record at or past offset. An offset inside a
// batch removes that whole batch: the log end becomes the batch's base.
// An offset at or past the log end removes no record, only the leader
// epochs starting at the log end (assigned with no record after them); one
// below the log
// start fails with ErrOffsetOutOfRange. The producer state, the open and
// aborted transactions (and their .txnindex files) and the leader-epoch
// cache are rolled back to the new end, and the durable offset lowered to
// it: the caller should checkpoint the recovery point again.
//
// A storage error part-way fails the log (ErrFailed) rather than leave it
// half truncated.
func (l *Log) TruncateTo(offset int64) error {
	l.cleaning.Lock() // a compaction must not act on records being removed
	defer l.cleaning.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if l.failed.Load() {
		return ErrFailed
	}
	if offset >= l.next {
		// No record goes, but an epoch this node assigned as a leader
		// that appended nothing before it was deposed may sit at the
		// log end. Kept, it stays the epoch the follower fetches with,
		// which the new leader never had: it answers a diverging epoch
		// ending here again and again (Kafka drops it the same way).
		if l.epochs.truncateFromEnd(l.next) {
			if err := l.saveEpochs(); err != nil {
				l.logger.Error("leader epoch checkpoint after truncation", "end", l.next, "err", err)
			}
		}
		return nil
	}
	if offset < l.start {
		return fmt.Errorf("%w: truncate to %d below the log start %d", ErrOffsetOutOfRange, offset, l.start)
	}
	k := sort.Search(len(l.segments), func(i int) bool { return l.segments[i].base > offset }) - 1
	seg := l.segments[k]
	pos, end, err := seg.cutPoint(offset)
	if err != nil {
		return fmt.Errorf("truncate to %d: %w", offset, err)
	}
	if err := l.truncate(k, pos, end); err != nil {
		l.failed.Store(true)
		return fmt.Errorf("truncate to %d: %w: %w", offset, err, errFailed)
	}
	l.logger.Info("truncated log", "offset", offset, "end", end)
	return nil
}

// cutPoint finds where truncating at offset cuts the segment: the position
// of the first batch reaching offset (the segment size when none does) and
// the end offset of the batches before it. Callers hold l.mu.
func (s *segment) cutPoint(offset int64) (pos, end int64, err error) {
	pos = lookupOffset(s.idx, uint32(max(offset-s.base, 0)))
	end = s.base
	for pos < s.size {
		h, err := s.readHeaderAt(pos)
		if err != nil {
			return 0, 0, err
		}
		if h.LastOffset() >= offset {
			break
		}
		end = h.LastOffset() + 1
		pos += h.Size()
	}
	return pos, end, nil
}

// truncate cuts segment k at byte pos, where the log then ends at end, and
// removes every later segment. Callers hold l.mu and l.cleaning.
func (l *Log) truncate(k int, pos, end int64) error {
	if err := l.closeTxnIndex(); err != nil {
		return err
	}
	// Later segments go first, newest first, so a crash part-way leaves
	// a shorter log and never one with a hole.
	later := l.segments[k+1:]
	for i := len(later) - 1; i >= 0; i-- {
		removeSegmentFiles(l.dir, later[i].base)
	}
	if err := syncDir(l.dir); err != nil {
		return err
	}
	for _, s := range later {
		s.closeLater()
	}
	segs := append([]*segment(nil), l.segments[:k+1]...)
	l.segments = segs
	old := segs[k]
	l.next = old.next // should the cut below fail, the log still ends where its segments do
	if pos < old.size {
		seg, err := l.copyPrefix(old, pos)
		if err != nil {
			return err
		}
		if seg.next != end {
			return fmt.Errorf("%w: segment %d copied up to offset %d, want %d", ErrCorrupt, old.base, seg.next, end)
		}
		segs[k] = seg
		old.closeLater()
	}
	l.next = end
	l.truncations++
	l.lastPass = compactMemo{} // the log it describes is gone
	storeMin(&l.durable, end)
	if err := l.trimTxnIndex(segs[k].base, end); err != nil {
		return err
	}
	kept := l.snapshots[:0]
	for _, off := range l.snapshots {
		if off > end {
			os.Remove(segPath(l.dir, off, snapshotExt))
		} else {
			kept = append(kept, off)
		}
	}
	if err := syncDir(l.dir); err != nil {
		return err
	}
	if err := l.loadProducers(slices.Clone(kept)); err != nil {
		return err
	}
	if l.epochs.truncateFromEnd(end) {
		if err := l.saveEpochs(); err != nil {
			// The file is gone: the next open rebuilds it from the log.
			l.logger.Error("leader epoch checkpoint after truncation", "end", end, "err", err)
		}
	}
	return nil
}

// copyPrefix copies the first pos bytes of segment old into a new file,
// fsyncs it and renames it over old's, returning the new segment with its
// index rebuilt. old's descriptor still reads the whole old file. Callers
// hold l.mu.
func (l *Log) copyPrefix(old *segment, pos int64) (*segment, error) {
	path := segPath(l.dir, old.base, ".log")
	tmp := path + truncatedExt
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("copy segment %d: %w", old.base, err)
	}
	fail := func(err error) (*segment, error) {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("copy segment %d: %w", old.base, err)
	}
	if pos > 0 {
		src, err := os.Open(path) // its own file offset: old.f is shared with readers
		if err != nil {
			return fail(err)
		}
		n, err := f.ReadFrom(io.LimitReader(src, pos))
		src.Close()
		if err == nil && n != pos {
			err = fmt.Errorf("copied %d bytes of %d", n, pos)
		}
		if err != nil {
			return fail(err)
		}
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	seg := &segment{dir: l.dir, base: old.base, f: f, next: old.base, maxTs: -1, indexesDirty: true}
	interval := l.cfg.Load().IndexIntervalBytes
	end, err := seg.scan(0, math.MaxInt64, func(h *Header, at int64) error {
		seg.track(h, at, h.Size(), interval)
		return nil
	})
	if err == nil && end != pos {
		err = fmt.Errorf("%w: scanned %d bytes of %d", ErrCorrupt, end, pos)
	}
	if err != nil {
		return fail(err)
	}
	seg.synced = pos
	if pos > 0 {
		seg.firstAppend = old.firstAppend
	}
	os.Remove(indexPath(l.dir, old.base))
	os.Remove(timeIndexPath(l.dir, old.base))
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	return seg, nil
}

// trimTxnIndex rewrites the .txnindex of the segment at base without the
// aborted transactions whose marker is at or past end, atomically and
// durably. Callers hold l.mu.
func (l *Log) trimTxnIndex(base, end int64) error {
	path := segPath(l.dir, base, txnIndexExt)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read transaction index of segment %d: %w", base, err)
	}
	var kept []byte
	for ; len(b) >= txnEntrySize; b = b[txnEntrySize:] {
		if int64(binary.BigEndian.Uint64(b[18:])) < end {
			kept = append(kept, b[:txnEntrySize]...)
		}
	}
	if len(kept) == 0 {
		err = os.Remove(path)
	} else {
		err = writeFileAtomic(path, kept)
	}
	if err != nil {
		return fmt.Errorf("rewrite transaction index of segment %d: %w", base, err)
	}
	return nil
}

// TruncateFullyAndStartAt removes every segment and starts an empty log at
// offset, for a follower whose log end is below the leader's log start:
// the producer state, transactions and leader-epoch cache are cleared, the
// log start and end become offset, and the result is durable.
func (l *Log) TruncateFullyAndStartAt(offset int64) error {
	if offset < 0 {
		return fmt.Errorf("%w: start the log at %d", ErrOffsetOutOfRange, offset)
	}
	l.cleaning.Lock()
	defer l.cleaning.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if l.failed.Load() {
		return ErrFailed
	}
	if err := l.restartAt(offset); err != nil {
		l.failed.Store(true)
		return fmt.Errorf("truncate fully and start at %d: %w: %w", offset, err, errFailed)
	}
	l.logger.Info("truncated log fully", "start", offset)
	return nil
}

// restartAt empties the log into one segment at offset. Callers hold l.mu
// and l.cleaning.
func (l *Log) restartAt(offset int64) error {
	if err := l.closeTxnIndex(); err != nil {
		return err
	}
	for i := len(l.segments) - 1; i >= 0; i-- {
		removeSegmentFiles(l.dir, l.segments[i].base)
	}
	for _, off := range l.snapshots {
		os.Remove(segPath(l.dir, off, snapshotExt))
	}
	if err := syncDir(l.dir); err != nil {
		return err
	}
	for _, s := range l.segments {
		s.closeLater()
	}
	seg, err := createSegment(l.dir, offset)
	if err != nil {
		return err // the log fails, its old segments still listed
	}
	l.segments = []*segment{seg}
	l.start, l.next = offset, offset
	l.truncations++
	l.lastPass = compactMemo{}
	l.durable.Store(offset)
	l.producers, l.openTxns, l.aborted, l.snapshots = producerStates{}, map[int64]int64{}, nil, nil
	if err := syncDir(l.dir); err != nil {
		return err
	}
	l.epochs.set(nil)
	return l.saveEpochs()
}

// storeMin lowers v to n unless it is already at or below it.
func storeMin(v *atomic.Int64, n int64) {
	for {
		d := v.Load()
		if n >= d || v.CompareAndSwap(d, n) {
			return
		}
	}
}
