package commitlog

import (
	"fmt"
	"os"
	"sync/atomic"
)

// UnsyncedRecords counts records appended since the last Flush.
func (l *Log) UnsyncedRecords() int64 { return l.appended.Load() - l.flushed.Load() }

// Flush fsyncs every segment holding unsynced bytes and advances the durable
// offset to the log end seen when it started. It is safe to call from any
// goroutine; appends continue while it runs.
func (l *Log) Flush() error {
	type job struct {
		seg        *segment
		from, size int64 // the unsynced bytes
	}
	l.mu.RLock()
	end, truncations := l.next, l.truncations
	// Appends count records under the write lock, so this count matches
	// end; records appended after it stay unsynced for the next flush.
	appended := l.appended.Load()
	var jobs []job
	for _, s := range l.segments {
		if s.synced < s.size {
			jobs = append(jobs, job{s, s.synced, s.size})
		}
	}
	l.mu.RUnlock()
	if l.failed.Load() {
		return ErrFailed
	}
	for _, j := range jobs {
		if err := j.seg.f.Sync(); err != nil {
			// Linux reports a writeback error once: a later fsync may
			// succeed over pages it dropped. The log stops here.
			l.failed.Store(true)
			return fmt.Errorf("fsync segment %d: %w: %w", j.seg.base, err, ErrFailed)
		}
		if l.uncached.Load() {
			dropCache(j.seg.f, j.from, j.size)
		}
	}
	if l.dirDirty.Swap(false) {
		if err := syncDir(l.dir); err != nil {
			l.dirDirty.Store(true)
			return err
		}
	}
	storeMax(&l.flushed, appended)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.truncations != truncations {
		// The log was cut meanwhile: offsets below end may now hold
		// records appended since, which this flush did not cover.
		return nil
	}
	for _, j := range jobs {
		if j.size > j.seg.synced {
			j.seg.synced = j.size
		}
	}
	storeMax(&l.durable, end)
	return nil
}

// SetUncached makes Flush drop the pages it synced from the page cache
// (true), or keep them as usual (false). A follower replica sets it: its
// log is read by no one while it follows, and pages kept for it would
// evict the pages of the partitions this node leads, which consumers and
// followers do read. Where the kernel hands new page-cache pages out
// slowly (virtual machines that return freed memory to their host), it
// also makes the follower's next writes reuse warm pages.
func (l *Log) SetUncached(on bool) { l.uncached.Store(on) }

// storeMax raises v to n unless it is already at or past it.
func storeMax(v *atomic.Int64, n int64) {
	for {
		d := v.Load()
		if n <= d || v.CompareAndSwap(d, n) {
			return
		}
	}
}

// syncDir fsyncs a directory so that file creations, renames and removals
// in it survive a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir for fsync: %w", err)
	}
	err = d.Sync()
	d.Close()
	if err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}
