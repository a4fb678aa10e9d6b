package broker

import "sync"

// byteBudget bounds the bytes of request bodies held at once across all
// connections (Kafka's queued.max.request.bytes): a reader waits for room
// before it allocates a body, so many clients sending large requests cannot
// exhaust memory.
type byteBudget struct {
	mu    sync.Mutex
	cond  *sync.Cond
	free  int64
	total int64
}

func newByteBudget(total int64) *byteBudget {
	b := &byteBudget{free: total, total: total}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// acquire takes n bytes (at most the whole budget), waiting while they are
// not free; it gives up, returning false, once stop is closed.
func (b *byteBudget) acquire(n int64, stop <-chan struct{}) bool {
	n = min(n, b.total)
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.free < n {
		select {
		case <-stop:
			return false
		default:
		}
		b.cond.Wait()
	}
	b.free -= n
	return true
}

func (b *byteBudget) release(n int64) {
	n = min(n, b.total)
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
	b.cond.Broadcast()
}

// wake lets waiters notice a closed stop channel.
func (b *byteBudget) wake() { b.cond.Broadcast() }
