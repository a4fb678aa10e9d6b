package commitlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"slices"
	"time"
)

// Producer state snapshots sit beside the segments as <offset>.snapshot, like
// Kafka's: the state of every producer after all batches below offset. One is
// written when a segment rolls (at the new segment's base) and one on a clean
// Close (at the log end), so opening a log replays at most the active
// segment. The format is Sluice's own, versioned and CRC-checked:
//
//	magic "SLPS" | version u16 | crc32c u32 of the rest | offset i64 | count u32
//	count × (producer id i64 | epoch i16 | last seen ms i64 | open txn first offset i64 |
//	         n u8 | n × (first seq i32 | last seq i32 | first offset i64 | last offset i64))
//
// Version 1 had no open-transaction offset (read as none).
//
// A snapshot that fails its checks is removed and an older one, or the log
// itself, rebuilds the state.

const (
	snapshotExt     = ".snapshot"
	snapshotMagic   = "SLPS"
	snapshotVersion = 2
	snapshotHeader  = 4 + 2 + 4 + 8 + 4
	snapshotEntry   = 8 + 2 + 8 + 8 + 1 // version 1: without the open transaction
	snapshotBatch   = 4 + 4 + 8 + 8
	snapshotsKept   = 2 // the newest, and one to fall back to
)

var errBadSnapshot = errors.New("bad producer snapshot")

// encodeProducerSnapshot serializes ps as the state at offset.
func encodeProducerSnapshot(ps producerStates, offset int64) []byte {
	n := snapshotHeader
	for _, e := range ps {
		n += snapshotEntry + snapshotBatch*len(e.batches)
	}
	b := make([]byte, 0, n)
	b = append(b, snapshotMagic...)
	b = binary.BigEndian.AppendUint16(b, snapshotVersion)
	b = append(b, 0, 0, 0, 0) // crc, filled in last
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	b = binary.BigEndian.AppendUint32(b, uint32(len(ps)))
	pids := make([]int64, 0, len(ps))
	for pid := range ps {
		pids = append(pids, pid)
	}
	slices.Sort(pids) // the same state always gives the same bytes
	for _, pid := range pids {
		e := ps[pid]
		b = binary.BigEndian.AppendUint64(b, uint64(pid))
		b = binary.BigEndian.AppendUint16(b, uint16(e.epoch))
		b = binary.BigEndian.AppendUint64(b, uint64(e.lastSeenMs))
		b = binary.BigEndian.AppendUint64(b, uint64(e.txnFirst))
		b = append(b, byte(len(e.batches)))
		for _, pb := range e.batches {
			b = binary.BigEndian.AppendUint32(b, uint32(pb.firstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(pb.lastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(pb.firstOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(pb.lastOffset))
		}
	}
	binary.BigEndian.PutUint32(b[6:], crc32.Checksum(b[10:], castagnoli))
	return b
}

// decodeProducerSnapshot parses a snapshot and returns its state and offset.
func decodeProducerSnapshot(b []byte) (producerStates, int64, error) {
	if len(b) < snapshotHeader || string(b[:4]) != snapshotMagic {
		return nil, 0, fmt.Errorf("%w: no header", errBadSnapshot)
	}
	v := binary.BigEndian.Uint16(b[4:])
	if v != 1 && v != snapshotVersion {
		return nil, 0, fmt.Errorf("%w: version %d", errBadSnapshot, v)
	}
	entrySize := snapshotEntry
	if v == 1 {
		entrySize -= 8
	}
	if crc32.Checksum(b[10:], castagnoli) != binary.BigEndian.Uint32(b[6:]) {
		return nil, 0, fmt.Errorf("%w: CRC mismatch", errBadSnapshot)
	}
	offset := int64(binary.BigEndian.Uint64(b[10:]))
	count := binary.BigEndian.Uint32(b[18:])
	rest := b[snapshotHeader:]
	if offset < 0 || uint64(count)*uint64(entrySize) > uint64(len(rest)) {
		return nil, 0, fmt.Errorf("%w: offset %d, %d entries in %d bytes", errBadSnapshot, offset, count, len(rest))
	}
	ps := make(producerStates, count)
	for range count {
		if len(rest) < entrySize {
			return nil, 0, fmt.Errorf("%w: truncated entry", errBadSnapshot)
		}
		pid := int64(binary.BigEndian.Uint64(rest))
		e := &producerEntry{
			epoch:      int16(binary.BigEndian.Uint16(rest[8:])),
			lastSeenMs: int64(binary.BigEndian.Uint64(rest[10:])),
			txnFirst:   -1,
		}
		if v >= 2 {
			e.txnFirst = int64(binary.BigEndian.Uint64(rest[18:]))
		}
		nb := int(rest[entrySize-1])
		rest = rest[entrySize:]
		if e.txnFirst < -1 || e.txnFirst > offset {
			return nil, 0, fmt.Errorf("%w: producer %d opens a transaction at %d", errBadSnapshot, pid, e.txnFirst)
		}
		if pid < 0 || ps[pid] != nil || nb > producerBatchesKept || len(rest) < nb*snapshotBatch {
			return nil, 0, fmt.Errorf("%w: entry of producer %d with %d batches", errBadSnapshot, pid, nb)
		}
		for range nb {
			e.batches = append(e.batches, producerBatch{
				firstSeq:    int32(binary.BigEndian.Uint32(rest)),
				lastSeq:     int32(binary.BigEndian.Uint32(rest[4:])),
				firstOffset: int64(binary.BigEndian.Uint64(rest[8:])),
				lastOffset:  int64(binary.BigEndian.Uint64(rest[16:])),
			})
			rest = rest[snapshotBatch:]
		}
		ps[pid] = e
	}
	if len(rest) != 0 {
		return nil, 0, fmt.Errorf("%w: %d trailing bytes", errBadSnapshot, len(rest))
	}
	return ps, offset, nil
}

// writeProducerSnapshot writes the state at l.next. It is not fsynced: a
// snapshot lost or torn in a crash fails its CRC and the log rebuilds the
// state, and one past the log end after a crash is discarded on open.
// Callers hold l.mu.
func (l *Log) writeProducerSnapshot() error {
	path := segPath(l.dir, l.next, snapshotExt)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, encodeProducerSnapshot(l.producers, l.next), 0o644); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write producer snapshot %d: %w", l.next, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write producer snapshot %d: %w", l.next, err)
	}
	if n := len(l.snapshots); n == 0 || l.snapshots[n-1] < l.next {
		l.snapshots = append(l.snapshots, l.next)
	}
	for len(l.snapshots) > snapshotsKept {
		os.Remove(segPath(l.dir, l.snapshots[0], snapshotExt))
		l.snapshots = l.snapshots[1:]
	}
	return nil
}

// loadProducers rebuilds the producer state when the log opens, given the
// snapshot offsets found in its directory: from the newest usable snapshot
// at or below the log end, then by replaying the batches after it (from the
// first segment when there is none). Snapshots past the log end (its tail
// was lost in a crash) or failing their checks are removed.
func (l *Log) loadProducers(offs []int64) error {
	l.producers = producerStates{}
	from := l.segments[0].base
	for i := len(offs) - 1; i >= 0; i-- {
		path := segPath(l.dir, offs[i], snapshotExt)
		if offs[i] > l.next {
			os.Remove(path)
			offs = offs[:i]
			continue
		}
		b, err := os.ReadFile(path)
		var ps producerStates
		var at int64
		if err == nil {
			ps, at, err = decodeProducerSnapshot(b)
		}
		if err == nil && at != offs[i] {
			err = fmt.Errorf("%w: holds offset %d", errBadSnapshot, at)
		}
		if err != nil {
			l.logger.Warn("ignoring producer snapshot", "offset", offs[i], "err", err)
			os.Remove(path)
			offs = offs[:i]
			continue
		}
		l.producers, from = ps, max(from, at)
		break
	}
	l.snapshots = offs // the newest left is the one loaded, if any
	l.openTxns = map[int64]int64{}
	for pid, e := range l.producers {
		if e.txnFirst >= 0 {
			l.openTxns[pid] = e.txnFirst
		}
	}
	if err := l.loadAborted(from); err != nil {
		return err
	}
	return l.replayProducers(from)
}

// replayProducers feeds every producer batch at or past from to the state,
// as seen now: the state's expiry counts from this start.
func (l *Log) replayProducers(from int64) error {
	now := time.Now().UnixMilli()
	for _, s := range l.segments {
		if s.next <= from || s.size == 0 {
			continue
		}
		pos := lookupOffset(s.idx, uint32(max(from-s.base, 0)))
		_, err := s.scan(pos, 1<<62, func(h *Header, at int64) error {
			if h.BaseOffset < from || h.ProducerID < 0 {
				return nil
			}
			l.producers.observe(h, now)
			var data []byte
			if h.IsControl() { // a marker: its type is in the record
				data = make([]byte, h.Size())
				if _, err := s.f.ReadAt(data, at); err != nil {
					return fmt.Errorf("read marker at %d: %w", h.BaseOffset, err)
				}
			}
			return l.observeTxn(h, data)
		})
		if err != nil {
			return fmt.Errorf("rebuild producer state from segment %d: %w", s.base, err)
		}
	}
	return nil
}
