package broker

import (
	"sync"
	"time"

	"github.com/sluice-io/sluice/broker/commitlog"
)

// lazyFlusher fsyncs logs that took writes nobody waits for (offset
// commits, group metadata): at most every lazyFlushInterval per log
// instead of one fsync round per write, which under a stream of commits
// cost a quarter of the broker's CPU.
type lazyFlusher struct {
	mu    sync.Mutex
	dirty map[*commitlog.Log]bool
}

// lazyFlushInterval bounds how long an acknowledged, unwaited write may
// stay in the page cache only.
const lazyFlushInterval = 20 * time.Millisecond

func (f *lazyFlusher) mark(l *commitlog.Log) {
	f.mu.Lock()
	if f.dirty == nil {
		f.dirty = map[*commitlog.Log]bool{}
	}
	f.dirty[l] = true
	f.mu.Unlock()
}

// flushLazy starts the fsync of every log marked since the last call,
// through the group-committing flusher, without waiting for it.
func (b *Broker) flushLazy() {
	b.lazy.mu.Lock()
	dirty := b.lazy.dirty
	b.lazy.dirty = nil
	b.lazy.mu.Unlock()
	for l := range dirty {
		b.flusher.Sync(l, l.EndOffset())
	}
}
