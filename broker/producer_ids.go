package broker

import (
	"fmt"
	"sync"
)

// producerIDBlockSize is how many producer ids one metadata entry reserves,
// as Kafka's AllocateProducerIds does.
const producerIDBlockSize = 1000

// producerIDs hands out producer ids from blocks reserved through the
// metadata log, so that no id is ever handed out twice, even across
// restarts: the ids left in a block when the broker stops are skipped.
type producerIDs struct {
	mu         sync.Mutex
	next, end  int64 // the current block's unused ids: [next, end)
	allocBlock func() (first, size int64, err error)
}

// nextID returns a producer id no client has had.
func (p *producerIDs) nextID() (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next >= p.end {
		first, size, err := p.allocBlock()
		if err != nil {
			return -1, fmt.Errorf("allocate producer id block: %w", err)
		}
		p.next, p.end = first, first+size
	}
	id := p.next
	p.next++
	return id, nil
}
