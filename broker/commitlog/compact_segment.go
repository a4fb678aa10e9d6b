package commitlog

import (
	"bufio"
	"fmt"
	"io"
	"os"
)

// cleanSegment rewrites one non-active segment into <base>.log.cleaned
// (with its indexes), fsyncs it and swaps it in for old.
func (l *Log) cleanSegment(old *segment, m *offsetMap, cfg *Config, stats *CompactStats) error {
	l.mu.RLock()
	size := old.size // a non-active segment no longer grows
	l.mu.RUnlock()

	logPath := segPath(l.dir, old.base, ".log.cleaned")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	seg := &segment{dir: l.dir, base: old.base, f: f, next: old.base, maxTs: -1, indexesDirty: true}
	idxPath, timePath := indexPath(l.dir, old.base)+".cleaned", timeIndexPath(l.dir, old.base)+".cleaned"
	discard := func() {
		f.Close()
		for _, p := range []string{logPath, idxPath, timePath} {
			os.Remove(p)
		}
	}
	var removed CompactStats
	r := bufio.NewReaderSize(io.NewSectionReader(old.f, 0, size), 256<<10)
	for pos := int64(0); pos < size; {
		b, h, err := readBatch(r, size-pos)
		if err != nil {
			discard()
			return fmt.Errorf("read batch at %d: %w", pos, err)
		}
		pos += h.Size()
		out, err := m.filterBatch(b, &h, &removed)
		if err != nil {
			discard()
			return err
		}
		if out == nil {
			continue
		}
		nh, err := Validate(out)
		if err != nil {
			discard()
			return fmt.Errorf("rebuilt batch at offset %d: %w", h.BaseOffset, err)
		}
		if err := seg.appendBatch(out, &nh, cfg.IndexIntervalBytes); err != nil {
			discard()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		discard()
		return fmt.Errorf("fsync cleaned segment: %w", err)
	}
	if err := writeIndexFiles(idxPath, timePath, seg.idx, true); err != nil {
		discard()
		return err
	}
	seg.synced, seg.indexesDirty = seg.size, false

	swapped, err := l.swapSegment(old, seg, logPath, idxPath, timePath)
	if err != nil || !swapped {
		discard()
		return err
	}
	stats.Segments++
	stats.RecordsRemoved += removed.RecordsRemoved
	stats.TombstonesRemoved += removed.TombstonesRemoved
	stats.BatchesRemoved += removed.BatchesRemoved
	stats.BytesBefore += size
	stats.BytesAfter += seg.size
	l.logger.Info("compacted segment", "segment", old.base, "size_before", size, "size_after", seg.size,
		"records_removed", removed.RecordsRemoved)
	return nil
}

// swapSegment puts the cleaned segment in old's place, on disk and in the
// segment list, unless old is gone meanwhile (retention, DeleteRecords,
// Close). The old index files are removed before the renames: a crash
// anywhere in between leaves a .log without an index, or with its own, and
// recovery rebuilds a missing one. The old descriptor is closed after a
// delay so that reads already holding it finish on the old file.
func (l *Log) swapSegment(old, seg *segment, logPath, idxPath, timePath string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := -1
	for j, s := range l.segments {
		if s == old {
			i = j
		}
	}
	if l.closed || i < 0 || i == len(l.segments)-1 {
		return false, nil
	}
	os.Remove(indexPath(l.dir, old.base))
	os.Remove(timeIndexPath(l.dir, old.base))
	if err := os.Rename(logPath, segPath(l.dir, old.base, ".log")); err != nil {
		old.indexesDirty = true // its index files are gone; Close rewrites them
		return false, fmt.Errorf("swap in cleaned segment: %w", err)
	}
	if os.Rename(idxPath, indexPath(l.dir, old.base)) != nil || os.Rename(timePath, timeIndexPath(l.dir, old.base)) != nil {
		seg.indexesDirty = true // recovery rebuilds them, or Close writes them
	}
	l.segments[i] = seg
	l.dirDirty.Store(true)
	old.closeLater()
	return true, nil
}

// readBatch reads the next whole batch from r, which has left bytes left.
func readBatch(r *bufio.Reader, left int64) ([]byte, Header, error) {
	hdr, err := r.Peek(HeaderSize)
	if err != nil {
		return nil, Header{}, fmt.Errorf("%w: torn batch header", ErrCorrupt)
	}
	h, err := ParseHeader(hdr)
	if err != nil {
		return nil, h, err
	}
	if h.Size() > left {
		return nil, h, fmt.Errorf("%w: batch runs past the segment end", ErrCorrupt)
	}
	b := make([]byte, h.Size())
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, h, fmt.Errorf("%w: torn batch", ErrCorrupt)
	}
	return b, h, nil
}

// filterBatch returns the batch as compaction leaves it: b itself when every
// record stays (or the batch is kept whole), a rebuilt batch when some go,
// nil when none is left.
func (m *offsetMap) filterBatch(b []byte, h *Header, stats *CompactStats) ([]byte, error) {
	if h.IsControl() {
		return b, nil
	}
	if h.IsTransactional() {
		switch m.txn[h.BaseOffset] {
		case txnOpen:
			return b, nil
		case txnAborted:
			stats.RecordsRemoved += int64(h.NumRecords)
			stats.BatchesRemoved++
			return nil, nil
		}
	}
	recs, raws, err := decodeRecords(b)
	if err != nil {
		return b, nil // opaque: keep it as it is
	}
	var kept [][]byte
	maxTs := int64(-1)
	for i, r := range recs {
		keep, tombstone := m.keep(h, r.Key, r.Value, h.BaseOffset+int64(r.OffsetDelta))
		if !keep {
			stats.RecordsRemoved++
			if tombstone {
				stats.TombstonesRemoved++
			}
			continue
		}
		kept = append(kept, raws[i])
		maxTs = max(maxTs, h.BaseTimestamp+r.TimestampDelta64)
	}
	switch len(kept) {
	case len(recs):
		return b, nil
	case 0:
		if m.producersLast(h) {
			return rebuildBatch(b, h, nil, h.MaxTimestamp) // kept empty, as Kafka's cleaner does
		}
		stats.BatchesRemoved++
		return nil, nil
	}
	return rebuildBatch(b, h, kept, maxTs)
}
