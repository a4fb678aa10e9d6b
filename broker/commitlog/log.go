package commitlog

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config is a partition log's storage configuration, taken from the topic's
// Kafka configs (segment.bytes, segment.ms, ...). It can be swapped at run
// time with SetConfig.
type Config struct {
	SegmentBytes       int64 // roll when the active segment would pass this size
	SegmentMs          int64 // roll when the active segment is older than this; 0 never
	IndexIntervalBytes int64 // bytes between sparse index entries
	RetentionMs        int64 // delete segments older than this; -1 keeps them
	RetentionBytes     int64 // delete old segments while the log is larger; -1 unlimited
	Delete             bool  // cleanup.policy contains delete
	Compact            bool  // cleanup.policy contains compact
	DeleteRetentionMs  int64 // how long compaction keeps tombstones
	MinCompactionLagMs int64 // records younger than this are never compacted
}

// DefaultConfig is Kafka's broker default for a topic.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:       1 << 30,
		SegmentMs:          7 * 24 * 3600 * 1000,
		IndexIntervalBytes: 4096,
		RetentionMs:        7 * 24 * 3600 * 1000,
		RetentionBytes:     -1,
		Delete:             true,
		DeleteRetentionMs:  24 * 3600 * 1000,
	}
}

// ErrOffsetOutOfRange is returned for reads below the log start offset or
// past the log end offset.
var ErrOffsetOutOfRange = errors.New("offset out of range")

// ErrClosed is returned by a log that was closed or removed (its topic was
// deleted); the broker answers as for an unknown partition.
var ErrClosed = errors.New("log closed")

// ErrFailed is returned once a write or an fsync of the log failed: like
// Kafka taking a log dir offline, the log accepts nothing more until the
// broker restarts and recovers it, because after a failed fsync the kernel
// may have dropped pages that a later, successful fsync would not cover.
var ErrFailed = errors.New("log failed after a storage error; restart to recover it")

// errFailed marks an error that must fail the log.
var errFailed = ErrFailed

// Log is one partition replica's commit log.
type Log struct {
	dir    string
	logger *slog.Logger
	cfg    atomic.Pointer[Config]

	mu       sync.RWMutex
	segments []*segment // sorted by base; the last is the active one
	next     int64      // log end offset
	start    int64      // log start offset

	producers producerStates  // idempotent producers' state (producers.go)
	openTxns  map[int64]int64 // producer id → first offset of its open transaction (txn.go)
	aborted   []AbortedTxn    // aborted transactions, by marker offset
	txnIdx    txnIndex        // the active segment's .txnindex, once written
	snapshots []int64         // offsets of the producer snapshot files, ascending
	epochs    epochCache      // first offset of each leader epoch (epochs.go)

	durable     atomic.Int64 // offsets below this are fsynced (recovery point)
	truncations uint64       // TruncateTo and TruncateFullyAndStartAt calls, guarded by mu: a Flush running across one must not raise durable
	closed      bool
	failed      atomic.Bool  // a write or fsync failed: no more appends
	appended    atomic.Int64 // records appended since Open (for flush.messages)
	flushed     atomic.Int64 // value of appended covered by the last completed fsync
	dirDirty    atomic.Bool  // segment files were created, renamed or removed since the last directory fsync
	uncached    atomic.Bool  // Flush drops the pages it synced from the page cache (SetUncached)

	cleaning sync.Mutex  // one compaction at a time (compact.go)
	lastPass compactMemo // guarded by cleaning
}

// Batch is one validated record batch to append, with its parsed header.
type Batch struct {
	Data   []byte
	Header Header
}

// Open opens (or creates) the log in dir. Batches at or past recoveryPoint
// were not known to be fsynced: they are re-validated (lengths and CRC) and
// the log is truncated at the first bad one, so a torn or garbage tail never
// reaches a reader. startOffset is the checkpointed log start offset.
func Open(dir string, cfg Config, recoveryPoint, startOffset int64, logger *slog.Logger) (*Log, error) {
	if logger == nil {
		logger = slog.Default()
	}
	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	if os.IsNotExist(statErr) {
		// A new partition directory is durable only once its parent's
		// entry is.
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return nil, err
		}
	}
	l := &Log{dir: dir, logger: logger.With("log", filepath.Base(dir)), producers: producerStates{}, openTxns: map[int64]int64{}}
	l.cfg.Store(&cfg)
	bases, snaps, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	if len(bases) == 0 {
		for _, off := range snaps {
			os.Remove(segPath(dir, off, snapshotExt)) // left without a log: stale
		}
		seg, err := createSegment(dir, max(startOffset, 0))
		if err != nil {
			return nil, err
		}
		l.segments = []*segment{seg}
		l.next, l.start = seg.base, seg.base
		l.epochs.set(nil)
		os.Remove(filepath.Join(dir, epochCheckpointName)) // left without a log: stale
		l.durable.Store(l.next)
		l.dirDirty.Store(true)
		return l, nil
	}
	if err := l.recover(bases, recoveryPoint); err != nil {
		l.closeFiles()
		return nil, err
	}
	l.start = min(max(startOffset, l.segments[0].base), l.next)
	l.durable.Store(min(max(recoveryPoint, 0), l.next))
	if err := l.loadProducers(snaps); err != nil {
		l.closeFiles()
		return nil, err
	}
	if err := l.loadEpochs(); err != nil {
		l.closeFiles()
		return nil, err
	}
	return l, nil
}

// listSegments returns the base offsets of the .log files in dir and the
// offsets of the producer snapshots, both ascending, and removes leftovers
// of interrupted compaction swaps and snapshot writes.
func listSegments(dir string) (bases, snapshots []int64, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("list log dir: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".cleaned") || strings.HasSuffix(name, ".deleted") || strings.HasSuffix(name, truncatedExt) || strings.HasSuffix(name, snapshotExt+".tmp") {
			os.Remove(filepath.Join(dir, name))
			continue
		}
		list, ext := &bases, ".log"
		if strings.HasSuffix(name, snapshotExt) {
			list, ext = &snapshots, snapshotExt
		} else if !strings.HasSuffix(name, ext) {
			continue
		}
		off, err := strconv.ParseInt(strings.TrimSuffix(name, ext), 10, 64)
		if err != nil || off < 0 {
			continue
		}
		*list = append(*list, off)
	}
	slices.Sort(bases)
	slices.Sort(snapshots)
	return bases, snapshots, nil
}

// Config returns the current configuration.
func (l *Log) Config() Config { return *l.cfg.Load() }

// SetConfig swaps the configuration; it applies to the next append and the
// next retention or compaction pass.
func (l *Log) SetConfig(c Config) { l.cfg.Store(&c) }

// Dir is the partition directory.
func (l *Log) Dir() string { return l.dir }

// EndOffset is the log end offset: the offset the next record gets.
func (l *Log) EndOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.next
}

// StartOffset is the log start offset.
func (l *Log) StartOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.start
}

// Offsets returns the log start and end offsets together.
func (l *Log) Offsets() (start, end int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.start, l.next
}

// DurableOffset is the recovery point: every offset below it is fsynced.
func (l *Log) DurableOffset() int64 { return l.durable.Load() }

// Size is the total bytes of all segments.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var n int64
	for _, s := range l.segments {
		n += s.size
	}
	return n
}

// Append writes batches at the log end, stamping each with its base offset
// and the leader epoch. It returns the first batch's base offset. The caller
// has validated the batches (SplitBatches).
//
// Batches of idempotent producers are checked against the producer's state
// first (producers.go) under the same lock as the write. A retried batch
// already stored is not written again: Append stops there and returns
// ErrDuplicateBatch with that batch's original base offset. A batch failing
// the checks stops Append with ErrOutOfOrderSequence or
// ErrInvalidProducerEpoch; batches before it stay appended (the produce
// path appends one batch per call).
func (l *Log) Append(batches []Batch, epoch int32) (int64, error) {
	cfg := l.cfg.Load()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	if l.failed.Load() {
		return 0, ErrFailed
	}
	first := l.next
	var records int64
	var now int64 // read once, and only for producer batches
	for i := range batches {
		b := &batches[i]
		if b.Header.ProducerID >= 0 {
			if now == 0 {
				now = time.Now().UnixMilli()
			}
			dup, err := l.checkProducer(&b.Header)
			if err != nil {
				return 0, err
			}
			if dup != nil {
				return dup.firstOffset, ErrDuplicateBatch
			}
		}
		if err := l.maybeRoll(cfg, int64(len(b.Data)), l.next+int64(b.Header.LastOffsetDelta)); err != nil {
			return 0, err
		}
		if epoch > l.epochs.latest {
			l.noteEpoch(epoch, l.next)
		}
		stamp(b.Data, l.next, epoch)
		b.Header.BaseOffset, b.Header.LeaderEpoch = l.next, epoch
		if err := l.active().appendBatch(b.Data, &b.Header, cfg.IndexIntervalBytes); err != nil {
			if errors.Is(err, errFailed) {
				l.failed.Store(true)
			}
			return 0, err
		}
		l.next = b.Header.LastOffset() + 1
		records += int64(b.Header.NumRecords)
		l.producers.observe(&b.Header, now)
		if err := l.observeTxn(&b.Header, b.Data); err != nil {
			// The batch is in the log; only the aborted index lags, and
			// the next open rebuilds it from the producer replay.
			l.logger.Error("transaction index", "offset", b.Header.BaseOffset, "err", err)
		}
	}
	l.appended.Add(records)
	return first, nil
}

func (l *Log) active() *segment { return l.segments[len(l.segments)-1] }

// maybeRoll starts a new segment when the next batch would overflow the
// active one by size, age or relative offset (lastOffset is the batch's
// last offset).
func (l *Log) maybeRoll(cfg *Config, size int64, lastOffset int64) error {
	a := l.active()
	if a.size == 0 {
		return nil
	}
	// Index positions are 32-bit, as in Kafka (segment.bytes is an int).
	full := a.size+size > min(cfg.SegmentBytes, math.MaxInt32)
	old := cfg.SegmentMs > 0 && !a.firstAppend.IsZero() && time.Since(a.firstAppend) > time.Duration(cfg.SegmentMs)*time.Millisecond
	overflow := lastOffset-a.base > math.MaxInt32
	if !full && !old && !overflow {
		return nil
	}
	return l.roll()
}

// roll closes the active segment's index and opens a new active segment at
// the log end. The old segment is fsynced by the next Flush.
func (l *Log) roll() error {
	a := l.active()
	if err := a.f.Truncate(a.size); err != nil {
		return fmt.Errorf("trim segment %d before rolling: %w", a.base, err)
	}
	if err := a.writeIndexes(false); err != nil {
		return err
	}
	seg, err := createSegment(l.dir, l.next)
	if err != nil {
		return err
	}
	l.segments = append(l.segments, seg)
	l.dirDirty.Store(true)
	if err := l.closeTxnIndex(); err != nil {
		// The snapshot must not vouch for index entries that may be lost.
		l.logger.Warn("no producer snapshot at roll", "offset", l.next, "err", err)
		return nil
	}
	if err := l.writeProducerSnapshot(); err != nil {
		// Only an optimisation is lost: the next open replays more.
		l.logger.Warn("producer snapshot at roll", "offset", l.next, "err", err)
	}
	return nil
}

// Roll forces a new segment (used by tests and by segment.ms checks).
func (l *Log) Roll() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.active().size == 0 {
		return nil
	}
	return l.roll()
}

// Close flushes the log and writes the segments' indexes. The index files
// are not fsynced: a lost or torn index is detected and rebuilt on open.
func (l *Log) Close() error {
	err := l.Flush()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	for _, s := range l.segments {
		if ierr := s.writeIndexes(false); ierr != nil && err == nil {
			err = ierr
		}
	}
	if l.epochs.dirty {
		if eerr := l.saveEpochs(); eerr != nil && err == nil {
			err = eerr
		}
	}
	if terr := l.closeTxnIndex(); terr != nil {
		if err == nil {
			err = terr
		}
	} else if !l.failed.Load() {
		if serr := l.writeProducerSnapshot(); serr != nil && err == nil {
			err = serr
		}
	}
	l.closeFiles()
	return err
}

func (l *Log) closeFiles() {
	for _, s := range l.segments {
		s.f.Close()
	}
	if l.txnIdx.f != nil {
		l.txnIdx.f.Close()
		l.txnIdx = txnIndex{}
	}
}

// Remove closes the log and deletes its directory (topic deletion).
// Fetches already serving its segments keep their descriptors for a while
// (closeLater), and a running compaction finishes before the files go.
func (l *Log) Remove() error {
	l.cleaning.Lock()
	defer l.cleaning.Unlock()
	l.mu.Lock()
	l.closed = true
	for _, s := range l.segments {
		s.closeLater()
	}
	l.mu.Unlock()
	return os.RemoveAll(l.dir)
}
