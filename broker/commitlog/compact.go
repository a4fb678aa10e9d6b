package commitlog

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
)

// CompactStats reports one compaction pass.
type CompactStats struct {
	Segments          int   // segments rewritten
	RecordsRemoved    int64 // records dropped: superseded, expired tombstones, aborted
	TombstonesRemoved int64 // of which expired tombstones
	BatchesRemoved    int64 // batches dropped because no record was left in them
	BytesBefore       int64 // size of the rewritten segments before
	BytesAfter        int64 // and after
}

// Compact cleans the log for cleanup.policy=compact (cfg.Compact): in every
// segment but the active one, a record survives only while it is the
// newest for its key. See CompactBelow.
func (l *Log) Compact(nowMs int64) (CompactStats, error) {
	return l.CompactBelow(nowMs, -1)
}

// CompactBelow compacts the segments that end at or below upTo (-1: the log
// end); the broker passes the smaller of the high watermark and the last
// stable offset, so that nothing a consumer cannot read yet is cleaned.
//
// The cleanable segments are the non-active ones, oldest first, up to the
// first whose largest timestamp is within MinCompactionLagMs of nowMs. A map
// from key to the offset of its newest record is built over the whole log;
// transactional records count once their commit marker is seen, aborted
// ones never. Each cleanable segment that would change is then rewritten
// keeping records without a key, records that are the newest for their key
// and, for DeleteRetentionMs after their batch's max timestamp, tombstones.
// Control batches and undecided transactions are kept whole; aborted
// transactional batches are dropped, as Kafka's cleaner does. Offsets keep
// their numbers: gaps appear, which reads skip. The last batch of each
// producer the log still tracks stays, emptied of its records when none
// survives, so that its sequence and epoch can be rebuilt from the log.
//
// Compaction holds the log's lock only to pick the segments and to swap in
// each rewritten one: appends and reads go on meanwhile.
func (l *Log) CompactBelow(nowMs, upTo int64) (CompactStats, error) {
	var stats CompactStats
	cfg := l.cfg.Load()
	if !cfg.Compact {
		return stats, nil
	}
	l.cleaning.Lock()
	defer l.cleaning.Unlock()

	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return stats, nil
	}
	start, end := l.start, l.next
	if upTo < 0 || upTo > end {
		upTo = end
	}
	memo := compactMemo{cfg: cfg, start: start, end: end, upTo: upTo, segments: len(l.segments), due: math.MaxInt64}
	if l.lastPass.still(memo, nowMs) {
		l.mu.RUnlock()
		return stats, nil // nothing appended, rolled or expired since the last pass
	}
	var cleanable []*segment
	for i, s := range l.segments[:len(l.segments)-1] {
		if l.segments[i+1].base > upTo {
			break
		}
		if cfg.MinCompactionLagMs > 0 && nowMs-s.maxTs < cfg.MinCompactionLagMs {
			memo.due = s.maxTs + cfg.MinCompactionLagMs
			break
		}
		if s.next > start {
			cleanable = append(cleanable, s)
		}
	}
	l.mu.RUnlock()
	if len(cleanable) == 0 {
		l.lastPass = memo
		return stats, nil
	}
	m, err := l.buildOffsetMap(start, end, cleanable, nowMs, cfg)
	if err != nil {
		return stats, fmt.Errorf("compaction: build offset map: %w", err)
	}
	memo.due = min(memo.due, m.due)
	for _, s := range cleanable {
		if !m.dirty[s] {
			continue
		}
		if err := l.cleanSegment(s, m, cfg, &stats); err != nil {
			return stats, fmt.Errorf("compaction: clean segment %d: %w", s.base, err)
		}
	}
	l.lastPass = memo
	return stats, nil
}

// compactMemo describes the log as the last complete compaction pass saw
// it. While nothing differs and nowMs is before due (when a kept tombstone
// expires or a segment leaves the compaction lag), a new pass would find
// nothing to do.
type compactMemo struct {
	cfg                   *Config
	start, end, upTo, due int64
	segments              int
}

func (m compactMemo) still(now compactMemo, nowMs int64) bool {
	return m.cfg == now.cfg && m.start == now.start && m.end == now.end && m.upTo == now.upTo &&
		m.segments == now.segments && nowMs < m.due
}

type txnState uint8

const (
	txnOpen txnState = iota
	txnCommitted
	txnAborted
)

// offsetMap is what one compaction pass knows about the log.
type offsetMap struct {
	latest    map[string]int64   // key → offset of its newest record that counts
	txn       map[int64]txnState // base offset of each transactional data batch → outcome
	lastOfPID map[int64]int64    // producer id → base offset of its last data batch, for tracked producers
	dirty     map[*segment]bool  // cleanable segments that have something to drop
	cleanable []*segment
	due       int64 // when the first tombstone kept in a cleanable segment expires
	nowMs     int64
	cfg       *Config
}

type pendingRecord struct {
	key string
	off int64
}

// pendingTxn is an undecided transaction of one producer.
type pendingTxn struct {
	batches []int64
	records []pendingRecord
}

func (l *Log) buildOffsetMap(start, end int64, cleanable []*segment, nowMs int64, cfg *Config) (*offsetMap, error) {
	m := &offsetMap{
		latest:    make(map[string]int64),
		txn:       make(map[int64]txnState),
		lastOfPID: make(map[int64]int64),
		dirty:     make(map[*segment]bool),
		cleanable: cleanable,
		nowMs:     nowMs,
		cfg:       cfg,
		due:       math.MaxInt64,
	}
	pending := make(map[int64]*pendingTxn)
	err := l.ReadBatches(start, func(b []byte, h Header) bool {
		if h.BaseOffset >= end {
			return false
		}
		if h.ProducerID >= 0 && !h.IsControl() {
			m.lastOfPID[h.ProducerID] = h.BaseOffset
		}
		recs, err := DecodeRecords(b)
		if err != nil {
			return true // opaque: kept as it is, and its keys do not count
		}
		switch {
		case h.IsControl():
			p := pending[h.ProducerID]
			delete(pending, h.ProducerID)
			if p == nil || len(recs) == 0 || len(recs[0].Key) < 4 {
				return true
			}
			outcome := txnAborted
			if binary.BigEndian.Uint16(recs[0].Key[2:]) == 1 {
				outcome = txnCommitted
			}
			for _, base := range p.batches {
				m.txn[base] = outcome
				if outcome == txnAborted {
					m.markDirty(base)
				}
			}
			if outcome == txnCommitted {
				for _, r := range p.records {
					m.see(r.key, r.off)
				}
			}
		case h.IsTransactional():
			p := pending[h.ProducerID]
			if p == nil {
				p = &pendingTxn{}
				pending[h.ProducerID] = p
			}
			p.batches = append(p.batches, h.BaseOffset)
			m.txn[h.BaseOffset] = txnOpen
			for _, r := range recs {
				if r.Key != nil {
					p.records = append(p.records, pendingRecord{string(r.Key), h.BaseOffset + int64(r.OffsetDelta)})
				}
			}
		default:
			for _, r := range recs {
				if r.Key != nil {
					m.see(string(r.Key), h.BaseOffset+int64(r.OffsetDelta))
				}
			}
		}
		for _, r := range recs {
			if r.Key != nil && r.Value == nil && !h.IsControl() {
				if m.tombstonesExpired(&h) {
					m.markDirty(h.BaseOffset)
				} else if m.cfg.DeleteRetentionMs >= 0 && m.inCleanable(h.BaseOffset) {
					m.due = min(m.due, h.MaxTimestamp+m.cfg.DeleteRetentionMs+1)
				}
				break
			}
		}
		return true
	})
	l.mu.RLock()
	for pid := range m.lastOfPID {
		if l.producers[pid] == nil {
			delete(m.lastOfPID, pid) // expired: its last batch may go
		}
	}
	l.mu.RUnlock()
	return m, err
}

// producersLast reports whether the batch is the last one of a producer
// the log tracks.
func (m *offsetMap) producersLast(h *Header) bool {
	last, ok := m.lastOfPID[h.ProducerID]
	return h.ProducerID >= 0 && ok && last == h.BaseOffset
}

// see records that key has a record at off; the record it supersedes (or
// off itself, when a newer one was seen first) becomes garbage.
func (m *offsetMap) see(key string, off int64) {
	old, ok := m.latest[key]
	switch {
	case !ok:
		m.latest[key] = off
	case off > old:
		m.latest[key] = off
		m.markDirty(old)
	case off < old:
		m.markDirty(off)
	}
}

func (m *offsetMap) markDirty(off int64) {
	if s := m.segmentOf(off); s != nil {
		m.dirty[s] = true
	}
}

func (m *offsetMap) inCleanable(off int64) bool { return m.segmentOf(off) != nil }

// segmentOf returns the cleanable segment holding off, or nil.
func (m *offsetMap) segmentOf(off int64) *segment {
	i := sort.Search(len(m.cleanable), func(i int) bool { return m.cleanable[i].next > off })
	if i < len(m.cleanable) && m.cleanable[i].base <= off {
		return m.cleanable[i]
	}
	return nil
}

// tombstonesExpired reports whether delete.retention.ms has passed since the
// batch's newest record, so that its tombstones may go.
func (m *offsetMap) tombstonesExpired(h *Header) bool {
	return m.cfg.DeleteRetentionMs >= 0 && m.nowMs-h.MaxTimestamp > m.cfg.DeleteRetentionMs
}

// keep reports whether a record survives compaction.
func (m *offsetMap) keep(h *Header, key, value []byte, off int64) (keep, tombstone bool) {
	if key == nil {
		return true, false
	}
	if m.latest[string(key)] != off {
		return false, false
	}
	if value == nil && m.tombstonesExpired(h) {
		return false, true
	}
	return true, false
}
