package commitlog

import (
	"encoding/binary"
	"fmt"
	"os"
	"slices"
)

// Transactions in a partition. A transactional batch of a producer opens
// its transaction here (at the batch's base offset) unless one is open; a
// control batch of the producer (a marker written by the transaction
// coordinator) closes it, committed or aborted. From that follow:
//
//   - the last stable offset (LSO): the first offset of the oldest open
//     transaction, or the log end when none is open. read_committed
//     consumers read up to it.
//   - the aborted transactions: (producer, first offset, marker offset)
//     of each aborted one, which read_committed consumers use to skip the
//     aborted records. They are kept in memory and in a .txnindex file per
//     segment in Kafka's layout (version i16 0, producer id i64, first
//     offset i64, last offset i64, last stable offset i64), appended to the
//     segment the marker lands in.
//
// Open transactions are part of the producer state (producers.go) and its
// snapshots. When a log opens, .txnindex entries below the offset the
// producer state is replayed from are trusted (roll and close fsync the
// file before the snapshot there is written); the replay rebuilds the rest.

// AbortedTxn is one aborted transaction of the partition.
type AbortedTxn struct {
	ProducerID       int64
	FirstOffset      int64
	LastOffset       int64 // the abort marker's offset
	LastStableOffset int64 // the LSO right after the marker
}

const (
	txnIndexExt   = ".txnindex"
	txnEntrySize  = 34
	controlAbort  = 0
	controlCommit = 1
)

// txnIndex is the .txnindex file of the active segment, opened on the
// first abort marker in it.
type txnIndex struct {
	base  int64
	f     *os.File
	dirty bool
}

// observeTxn follows the transactions of one stored batch (data is the
// whole batch, for a marker's type). Callers hold l.mu.
func (l *Log) observeTxn(h *Header, data []byte) error {
	if h.ProducerID < 0 || !h.IsTransactional() {
		return nil
	}
	e := l.producers[h.ProducerID]
	if e == nil {
		return nil // observe made it; a nil here means no producer id
	}
	if !h.IsControl() {
		if e.txnFirst < 0 {
			e.txnFirst = h.BaseOffset
			l.openTxns[h.ProducerID] = h.BaseOffset
		}
		return nil
	}
	typ, ok := controlType(data)
	if !ok || e.txnFirst < 0 {
		return nil // another kind of control record, or a repeated marker
	}
	first := e.txnFirst
	e.txnFirst = -1
	delete(l.openTxns, h.ProducerID)
	if typ != controlAbort {
		return nil
	}
	a := AbortedTxn{ProducerID: h.ProducerID, FirstOffset: first, LastOffset: h.BaseOffset, LastStableOffset: l.lastStable(h.BaseOffset + 1)}
	l.aborted = append(l.aborted, a)
	return l.writeAborted(a)
}

// controlType reads the type of a control batch's record (ControlRecordKey:
// version i16, type i16).
func controlType(data []byte) (int16, bool) {
	recs, err := DecodeRecords(data)
	if err != nil || len(recs) == 0 || len(recs[0].Key) < 4 {
		return 0, false
	}
	return int16(binary.BigEndian.Uint16(recs[0].Key[2:])), true
}

// lastStable is the LSO given the log end next, never below the log
// start (retention may have removed an open transaction's first batches;
// Kafka bounds it the same way). Callers hold l.mu.
func (l *Log) lastStable(next int64) int64 {
	lso := next
	for _, first := range l.openTxns {
		lso = min(lso, first)
	}
	return max(lso, min(l.start, next))
}

// LastStableOffset is the first offset of the oldest open transaction, or
// the log end when none is open.
func (l *Log) LastStableOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.lastStable(l.next)
}

// AbortedTransactions lists the aborted transactions with records in
// [from, to): those a read_committed fetch of that range must skip.
func (l *Log) AbortedTransactions(from, to int64) []AbortedTxn {
	l.mu.RLock()
	defer l.mu.RUnlock()
	i, _ := slices.BinarySearchFunc(l.aborted, from, func(a AbortedTxn, off int64) int {
		return int(min(max(a.LastOffset-off, -1), 1))
	})
	var out []AbortedTxn
	for _, a := range l.aborted[i:] {
		if a.FirstOffset < to {
			out = append(out, a)
		}
	}
	return out
}

// writeAborted appends a to the .txnindex of the segment holding its
// marker: the active one's, kept open, or (when the state is replayed
// from a rolled segment, its snapshot lost) that segment's, synced at
// once since no roll or close will. An entry in another segment's file
// would be dropped as misplaced when the log next opens. Callers hold
// l.mu.
func (l *Log) writeAborted(a AbortedTxn) error {
	base := l.active().base
	if i := l.segmentFor(a.LastOffset); i >= 0 && l.segments[i].base != base {
		return appendAborted(segPath(l.dir, l.segments[i].base, txnIndexExt), a)
	}
	if l.txnIdx.f != nil && l.txnIdx.base != base {
		if err := l.closeTxnIndex(); err != nil {
			return err
		}
	}
	if l.txnIdx.f == nil {
		f, err := os.OpenFile(segPath(l.dir, base, txnIndexExt), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("open transaction index of segment %d: %w", base, err)
		}
		l.txnIdx = txnIndex{base: base, f: f}
	}
	if _, err := l.txnIdx.f.Write(encodeAborted(a)); err != nil {
		return fmt.Errorf("write transaction index of segment %d: %w", base, err)
	}
	l.txnIdx.dirty = true
	return nil
}

// appendAborted appends a to the .txnindex at path and fsyncs it.
func appendAborted(path string, a AbortedTxn) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open transaction index %s: %w", path, err)
	}
	_, err = f.Write(encodeAborted(a))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write transaction index %s: %w", path, err)
	}
	return nil
}

// closeTxnIndex fsyncs (when written) and closes the open .txnindex.
func (l *Log) closeTxnIndex() error {
	f := l.txnIdx.f
	if f == nil {
		return nil
	}
	var err error
	if l.txnIdx.dirty {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	l.txnIdx = txnIndex{}
	if err != nil {
		return fmt.Errorf("sync transaction index: %w", err)
	}
	return nil
}

func encodeAborted(a AbortedTxn) []byte {
	b := make([]byte, 0, txnEntrySize)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint64(b, uint64(a.ProducerID))
	b = binary.BigEndian.AppendUint64(b, uint64(a.FirstOffset))
	b = binary.BigEndian.AppendUint64(b, uint64(a.LastOffset))
	return binary.BigEndian.AppendUint64(b, uint64(a.LastStableOffset))
}

// loadAborted reads the segments' .txnindex files, keeping the entries
// whose marker is below from (the replay rebuilds the others) and
// rewriting files that held more. Callers hold l.mu (or own the log).
func (l *Log) loadAborted(from int64) error {
	l.aborted = nil
	for _, s := range l.segments {
		path := segPath(l.dir, s.base, txnIndexExt)
		b, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read transaction index of segment %d: %w", s.base, err)
		}
		var kept []byte
		all := len(b)
		for ; len(b) >= txnEntrySize; b = b[txnEntrySize:] {
			a := AbortedTxn{
				ProducerID:       int64(binary.BigEndian.Uint64(b[2:])),
				FirstOffset:      int64(binary.BigEndian.Uint64(b[10:])),
				LastOffset:       int64(binary.BigEndian.Uint64(b[18:])),
				LastStableOffset: int64(binary.BigEndian.Uint64(b[26:])),
			}
			if binary.BigEndian.Uint16(b) != 0 || a.LastOffset >= from || a.LastOffset < s.base || a.LastOffset >= s.next {
				continue
			}
			l.aborted = append(l.aborted, a)
			kept = append(kept, b[:txnEntrySize]...)
		}
		if len(kept) == 0 {
			err = os.Remove(path)
		} else if len(kept) != all {
			err = os.WriteFile(path, kept, 0o644)
		}
		if err != nil {
			return fmt.Errorf("rewrite transaction index of segment %d: %w", s.base, err)
		}
	}
	slices.SortFunc(l.aborted, func(a, b AbortedTxn) int { return int(min(max(a.LastOffset-b.LastOffset, -1), 1)) })
	return nil
}

// dropAbortedBelow forgets aborted transactions whose marker is below
// offset (their segments are gone). Callers hold l.mu.
func (l *Log) dropAbortedBelow(offset int64) {
	i := 0
	for i < len(l.aborted) && l.aborted[i].LastOffset < offset {
		i++
	}
	l.aborted = slices.Delete(l.aborted, 0, i)
}
