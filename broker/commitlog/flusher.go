package commitlog

import (
	"errors"
	"sync"
)

// errFlusherClosed answers waits registered after Close.
var errFlusherClosed = errors.New("flusher closed")

// Flusher group-commits fsyncs: every caller that needs its appends durable
// registers a wait, and one loop fsyncs all logs with pending waits at once,
// so producers and partitions share each disk flush. While one round of
// fsyncs runs, new waits pile up for the next round.
type Flusher struct {
	mu      sync.Mutex
	waits   []flushWait
	closed  bool
	once    sync.Once
	kick    chan struct{}
	stop    chan struct{}
	stopped chan struct{}
}

type flushWait struct {
	log  *Log
	upTo int64 // offsets below this must be durable
	done chan error
}

// NewFlusher starts the flush loop.
func NewFlusher() *Flusher {
	f := &Flusher{kick: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
	go f.loop()
	return f
}

// Sync returns a channel that receives nil once every offset below upTo in
// l is fsynced, or the fsync error.
func (f *Flusher) Sync(l *Log, upTo int64) <-chan error {
	done := make(chan error, 1)
	if l.DurableOffset() >= upTo {
		done <- nil
		return done
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		done <- errFlusherClosed
		return done
	}
	f.waits = append(f.waits, flushWait{l, upTo, done})
	f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
	default:
	}
	return done
}

// Close stops the loop after answering the waits already registered.
// It may be called more than once; waits registered later fail.
func (f *Flusher) Close() {
	f.once.Do(func() {
		f.mu.Lock()
		f.closed = true
		f.mu.Unlock()
		close(f.stop)
	})
	<-f.stopped
}

func (f *Flusher) loop() {
	defer close(f.stopped)
	for {
		select {
		case <-f.kick:
			f.round()
		case <-f.stop:
			f.round()
			return
		}
	}
}

// round fsyncs every log with a registered wait, in parallel, and answers
// the waits.
func (f *Flusher) round() {
	f.mu.Lock()
	waits := f.waits
	f.waits = nil
	f.mu.Unlock()
	if len(waits) == 0 {
		return
	}
	errs := make(map[*Log]error, len(waits))
	for _, w := range waits {
		errs[w.log] = nil
	}
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		sem = make(chan struct{}, 16)
	)
	for l := range errs {
		wg.Add(1)
		sem <- struct{}{}
		go func(l *Log) {
			defer func() { <-sem; wg.Done() }()
			if err := l.Flush(); err != nil {
				mu.Lock()
				errs[l] = err
				mu.Unlock()
			}
		}(l)
	}
	wg.Wait()
	for _, w := range waits {
		w.done <- errs[w.log]
	}
}
