package commitlog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// The leader-epoch cache (Kafka's LeaderEpochFileCache, KIP-101 and
// KIP-279): for every leader epoch that wrote to the log, the first offset
// it wrote, ascending by both. Followers ask the leader for the end of
// their latest epoch (OffsetForLeaderEpoch) and truncate where their log
// diverged. The list is kept in memory and, whenever it changes (a new
// epoch, a truncation, a log start moving up), rewritten atomically as
// leader-epoch-checkpoint in Kafka's text format:
//
//	0                  (version)
//	N                  (number of entries)
//	epoch startOffset  (N lines)
//
// A missing or unreadable file is rebuilt on open from the batches'
// partition leader epochs.

const (
	epochCheckpointName    = "leader-epoch-checkpoint"
	epochCheckpointVersion = 0
)

// epochEntry is the first offset written in one leader epoch.
type epochEntry struct {
	epoch int32
	start int64
}

// epochCache is the log's list of epochs; the Log's mutex guards it.
type epochCache struct {
	entries []epochEntry // ascending by epoch and by start
	latest  int32        // epoch of the last entry, -1 when none: Append compares with it
	dirty   bool         // the file lags the entries (a write failed)
}

func (c *epochCache) set(entries []epochEntry) {
	c.entries = entries
	c.latest = -1
	if n := len(entries); n > 0 {
		c.latest = entries[n-1].epoch
	}
}

// assign records that epoch starts at start, Kafka's way: entries that
// would no longer be monotonic (an epoch at or above it, or a start at or
// past start) go first. It reports whether the list changed.
func (c *epochCache) assign(epoch int32, start int64) bool {
	if epoch < 0 {
		return false
	}
	if n := len(c.entries); n > 0 && c.entries[n-1].epoch == epoch && c.entries[n-1].start <= start {
		return false
	}
	n := len(c.entries)
	for n > 0 && (c.entries[n-1].epoch >= epoch || c.entries[n-1].start >= start) {
		n--
	}
	c.set(append(c.entries[:n], epochEntry{epoch, start}))
	return true
}

// truncateFromEnd drops the entries starting at or past end (Kafka's
// truncateFromEnd).
func (c *epochCache) truncateFromEnd(end int64) bool {
	n := len(c.entries)
	for n > 0 && c.entries[n-1].start >= end {
		n--
	}
	if n == len(c.entries) {
		return false
	}
	c.set(c.entries[:n])
	return true
}

// truncateFromStart drops the entries wholly below start; the one covering
// start then begins there (Kafka's truncateFromStart).
func (c *epochCache) truncateFromStart(start int64) bool {
	i := 0
	for i < len(c.entries) && c.entries[i].start <= start {
		i++
	}
	if i == 0 || (i == 1 && c.entries[0].start == start) {
		return false
	}
	kept := append([]epochEntry{{c.entries[i-1].epoch, start}}, c.entries[i:]...)
	c.set(kept)
	return true
}

// endOffsetFor answers OffsetForLeaderEpoch as Kafka's endOffsetFor does,
// given the log end offset.
func (c *epochCache) endOffsetFor(epoch int32, logEnd int64) (int32, int64) {
	if epoch < 0 || len(c.entries) == 0 {
		return -1, -1
	}
	if epoch == c.latest {
		return epoch, logEnd
	}
	hi := 0 // first entry above epoch
	for hi < len(c.entries) && c.entries[hi].epoch <= epoch {
		hi++
	}
	switch {
	case hi == len(c.entries):
		return -1, -1 // above every epoch the log knows
	case hi == 0:
		// Below every known epoch: its history went with retention; the
		// first known epoch's start is where the follower can resume.
		return epoch, c.entries[0].start
	}
	return c.entries[hi-1].epoch, c.entries[hi].start
}

// LatestEpoch is the highest leader epoch the log has, -1 when none.
func (l *Log) LatestEpoch() int32 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.epochs.latest
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch: the largest epoch at or
// below epoch that the log has and the end offset of that epoch (the start
// of the next higher epoch, or the log end for the latest one). An epoch
// below the earliest known one gives epoch itself with the earliest
// epoch's start offset, as Kafka answers; an undefined (negative) epoch,
// one above the latest, or a log without epochs give (-1, -1).
func (l *Log) EndOffsetForEpoch(epoch int32) (int32, int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.epochs.endOffsetFor(epoch, l.next)
}

// AssignEpoch records that epoch starts at the log end, when it is above
// the latest epoch (no-op otherwise). A new leader calls it as it takes
// over, so followers asking for the previous epoch learn where it ended
// before anything is appended in the new one.
func (l *Log) AssignEpoch(epoch int32) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if epoch <= l.epochs.latest {
		return nil
	}
	l.epochs.assign(epoch, l.next)
	return l.saveEpochs()
}

// noteEpoch records a batch's epoch when it differs from the latest, then
// persists the list. A failed write is logged: the list in memory stays
// right, the stale file is removed so the next open rebuilds it, and Close
// retries. Callers hold l.mu.
func (l *Log) noteEpoch(epoch int32, start int64) {
	if l.epochs.assign(epoch, start) {
		if err := l.saveEpochs(); err != nil {
			l.logger.Error("leader epoch checkpoint", "epoch", epoch, "offset", start, "err", err)
		}
	}
}

// saveEpochs writes the checkpoint file atomically and durably. Callers
// hold l.mu.
func (l *Log) saveEpochs() error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d\n%d\n", epochCheckpointVersion, len(l.epochs.entries))
	for _, e := range l.epochs.entries {
		fmt.Fprintf(&b, "%d %d\n", e.epoch, e.start)
	}
	path := filepath.Join(l.dir, epochCheckpointName)
	if err := writeFileAtomic(path, b.Bytes()); err != nil {
		l.epochs.dirty = true
		os.Remove(path) // better rebuilt on open than trusted stale
		return fmt.Errorf("write leader epoch checkpoint: %w", err)
	}
	l.epochs.dirty = false
	return nil
}

// writeFileAtomic replaces path with b: a temporary file, fsynced, renamed
// over it, and the directory fsynced.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := writeFile(tmp, b, true); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

var errBadEpochCheckpoint = errors.New("bad leader epoch checkpoint")

// readEpochCheckpoint parses a checkpoint file's contents.
func readEpochCheckpoint(b []byte) ([]epochEntry, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		return sc.Text(), true
	}
	v, ok := line()
	if !ok || v != strconv.Itoa(epochCheckpointVersion) {
		return nil, fmt.Errorf("%w: version %q", errBadEpochCheckpoint, v)
	}
	c, ok := line()
	n, err := strconv.Atoi(c)
	if !ok || err != nil || n < 0 || n > len(b) {
		return nil, fmt.Errorf("%w: count %q", errBadEpochCheckpoint, c)
	}
	entries := make([]epochEntry, 0, n)
	for range n {
		s, ok := line()
		var e epochEntry
		if !ok {
			return nil, fmt.Errorf("%w: %d entries, want %d", errBadEpochCheckpoint, len(entries), n)
		}
		if _, err := fmt.Sscanf(s, "%d %d", &e.epoch, &e.start); err != nil || e.epoch < 0 || e.start < 0 {
			return nil, fmt.Errorf("%w: entry %q", errBadEpochCheckpoint, s)
		}
		if k := len(entries); k > 0 && (e.epoch <= entries[k-1].epoch || e.start < entries[k-1].start) {
			return nil, fmt.Errorf("%w: entry %q out of order", errBadEpochCheckpoint, s)
		}
		entries = append(entries, e)
	}
	if s, ok := line(); ok && s != "" {
		return nil, fmt.Errorf("%w: trailing %q", errBadEpochCheckpoint, s)
	}
	return entries, nil
}

// loadEpochs reads the checkpoint when the log opens, or rebuilds it from
// the batch headers when it is missing or unreadable; entries starting at
// or past the log end (its tail was lost) and below the log start go, as
// Kafka trims them after recovery.
func (l *Log) loadEpochs() error {
	b, err := os.ReadFile(filepath.Join(l.dir, epochCheckpointName))
	var entries []epochEntry
	if err == nil {
		entries, err = readEpochCheckpoint(b)
	}
	rebuilt := err != nil
	if rebuilt {
		if !os.IsNotExist(err) {
			l.logger.Warn("rebuilding leader epoch checkpoint", "err", err)
		}
		if entries, err = l.scanEpochs(); err != nil {
			return err
		}
	}
	l.epochs.set(entries)
	changed := l.epochs.truncateFromEnd(l.next)
	changed = l.epochs.truncateFromStart(l.start) || changed
	if rebuilt || changed {
		return l.saveEpochs()
	}
	return nil
}

// scanEpochs rebuilds the epoch list from the partition leader epochs of
// the batch headers. Epochs never decrease along a log, so a segment whose
// last batch is in a known epoch holds no new one, and in a segment that
// does, the sparse index narrows where each new epoch starts: the cost is
// a few header reads per segment and per epoch, not a read of the log.
func (l *Log) scanEpochs() ([]epochEntry, error) {
	var c epochCache
	c.set(nil)
	for _, s := range l.segments {
		if err := s.findEpochs(&c); err != nil {
			return nil, fmt.Errorf("rebuild leader epochs from segment %d: %w", s.base, err)
		}
	}
	return c.entries, nil
}

// findEpochs adds to c the epochs above its latest that start in s.
// Callers own the log (Open).
func (s *segment) findEpochs(c *epochCache) error {
	if s.size == 0 {
		return nil
	}
	// The last batch: hop from the last indexed one.
	pos := int64(0)
	if n := len(s.idx); n > 0 {
		pos = int64(s.idx[n-1].pos)
	}
	var last Header
	for pos < s.size {
		h, err := s.readHeaderAt(pos)
		if err != nil {
			return err
		}
		last, pos = h, pos+h.Size()
	}
	for last.LeaderEpoch > c.latest {
		// The first indexed batch past the known epochs; the new epoch
		// starts after the indexed batch before it.
		var herr error
		i := sort.Search(len(s.idx), func(i int) bool {
			h, err := s.readHeaderAt(int64(s.idx[i].pos))
			if err != nil {
				herr = err
			}
			return err == nil && h.LeaderEpoch > c.latest
		})
		if herr != nil {
			return herr
		}
		pos := int64(0)
		if i > 0 {
			pos = int64(s.idx[i-1].pos)
		}
		for {
			h, err := s.readHeaderAt(pos)
			if err != nil {
				return err
			}
			if h.LeaderEpoch > c.latest {
				c.assign(h.LeaderEpoch, h.BaseOffset)
				break
			}
			pos += h.Size()
			if pos >= s.size {
				return fmt.Errorf("%w: no batch of epoch %d before the end", ErrCorrupt, last.LeaderEpoch)
			}
		}
	}
	return nil
}

// trimEpochsToStart follows the log start offset moving up. Callers hold
// l.mu.
func (l *Log) trimEpochsToStart() {
	if l.epochs.truncateFromStart(l.start) {
		if err := l.saveEpochs(); err != nil {
			l.logger.Error("leader epoch checkpoint", "start", l.start, "err", err)
		}
	}
}
