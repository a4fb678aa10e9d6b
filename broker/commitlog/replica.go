package commitlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrNotContiguous is returned by AppendReplica for a batch whose base
// offset is below the log end (or below the end of the batch before it):
// the follower fetched from the wrong offset, or its log diverged.
var ErrNotContiguous = errors.New("replicated batch does not follow the log end")

// ErrCorruptBatch is the error a corrupt replicated batch wraps; it is
// ErrCorrupt under the name the replication code uses.
var ErrCorruptBatch = ErrCorrupt

// AppendReplica is the follower's append: data is the records field of a
// Fetch response partition, record batches v2 as the leader stored them
// (base offsets and leader epochs stamped), possibly ending with a batch
// cut by the fetch size, which is ignored. Batches are written as they
// are, without the producer sequence checks, but the producer state,
// transactions (markers included) and the leader-epoch cache follow them
// as they follow Append, so a follower that becomes leader knows its
// producers. It returns how many bytes of data it appended (whole
// batches).
//
// Every batch must start at or past the log end: a base below it (an
// overlap) fails with ErrNotContiguous and appends nothing of that batch.
// A base past it is accepted, as Kafka does: a compacted leader's log has
// gaps where whole batches were cleaned away. A batch failing validation
// (length, magic, CRC) fails with ErrCorruptBatch; batches before it stay
// appended.
func (l *Log) AppendReplica(data []byte) (n int, err error) {
	cfg := l.cfg.Load()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	if l.failed.Load() {
		return 0, ErrFailed
	}
	var records int64
	defer func() { l.appended.Add(records) }()
	now := time.Now().UnixMilli()
	for len(data)-n >= HeaderSize {
		rest := data[n:]
		size := int64(int32(binary.BigEndian.Uint32(rest[offLength:]))) + logOverhead
		if size >= HeaderSize && size > int64(len(rest)) {
			break // cut by the fetch size: the next fetch brings it whole
		}
		h, err := ParseHeader(rest)
		if err == nil {
			h, err = Validate(rest[:size])
		}
		if err != nil {
			return n, fmt.Errorf("%w: replicated batch at offset %d: %w", ErrCorruptBatch, l.next, err)
		}
		if h.BaseOffset < l.next {
			return n, fmt.Errorf("%w: batch at offset %d, log end %d", ErrNotContiguous, h.BaseOffset, l.next)
		}
		b := rest[:size]
		if err := l.maybeRoll(cfg, size, h.LastOffset()); err != nil {
			return n, err
		}
		if h.LastOffset()-l.active().base > math.MaxInt32 {
			return n, fmt.Errorf("%w: batch at offset %d is too far past the log end %d for one segment", ErrNotContiguous, h.BaseOffset, l.next)
		}
		if h.LeaderEpoch != l.epochs.latest && h.LeaderEpoch >= 0 {
			l.noteEpoch(h.LeaderEpoch, h.BaseOffset)
		}
		if err := l.active().appendBatch(b, &h, cfg.IndexIntervalBytes); err != nil {
			if errors.Is(err, errFailed) {
				l.failed.Store(true)
			}
			return n, err
		}
		l.next = h.LastOffset() + 1
		records += int64(h.NumRecords)
		n += int(size)
		l.producers.observe(&h, now)
		if err := l.observeTxn(&h, b); err != nil {
			l.logger.Error("transaction index", "offset", h.BaseOffset, "err", err)
		}
	}
	return n, nil
}
