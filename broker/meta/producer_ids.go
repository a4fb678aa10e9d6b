package meta

import (
	"fmt"
	"math"
)

// Producer ids are handed out in blocks through the metadata log, as Kafka's
// AllocateProducerIds does: a broker asks for a block, the state machine moves
// the cluster-wide high-water mark past it, and the broker serves ids from the
// block in memory. An id is never handed out twice, even across restarts,
// because the high-water mark lives in the log and its snapshots; ids left in
// a block when a broker stops are simply skipped.

const cmdAllocateProducerIDs = "allocate_producer_ids"

// MaxProducerIDBlock bounds one allocation, so a bad proposer cannot exhaust
// the id space in one entry.
const MaxProducerIDBlock = 1 << 20

// allocateProducerIDsCmd asks for Size ids for broker NodeID.
type allocateProducerIDsCmd struct {
	NodeID int32 `json:"node_id"`
	Size   int64 `json:"size"`
}

// ProducerIDBlock is a range of producer ids owned by one broker:
// [First, First+Size).
type ProducerIDBlock struct {
	First int64
	Size  int64
}

func applyAllocateProducerIDs(cur *state, c *allocateProducerIDsCmd, index uint64) (*state, any) {
	if c.Size < 1 || c.Size > MaxProducerIDBlock {
		return nil, fmt.Errorf("%w: producer id block of %d", errBadCommand, c.Size)
	}
	if cur.nextProducerID > math.MaxInt64-c.Size {
		return nil, fmt.Errorf("meta: producer ids exhausted at %d", cur.nextProducerID)
	}
	next := cur.next(index)
	next.nextProducerID = cur.nextProducerID + c.Size
	return next, ProducerIDBlock{First: cur.nextProducerID, Size: c.Size}
}

// AllocateProducerIDs reserves size producer ids for this broker through the
// metadata log and returns the block.
func (s *Store) AllocateProducerIDs(size int64) (ProducerIDBlock, error) {
	return s.AllocateProducerIDsFor(s.cfg.NodeID, size)
}

// AllocateProducerIDsFor reserves size producer ids for broker nodeID: the
// controller calls it for the AllocateProducerIds requests of other brokers.
func (s *Store) AllocateProducerIDsFor(nodeID int32, size int64) (ProducerIDBlock, error) {
	resp, err := s.propose(cmdAllocateProducerIDs, allocateProducerIDsCmd{NodeID: nodeID, Size: size})
	if err != nil {
		return ProducerIDBlock{}, err
	}
	switch r := resp.(type) {
	case ProducerIDBlock:
		return r, nil
	case error:
		return ProducerIDBlock{}, r
	}
	return ProducerIDBlock{}, fmt.Errorf("meta: unexpected apply result %T", resp)
}

// NextProducerID is the first producer id no broker has been given yet.
func (s *Store) NextProducerID() int64 { return s.fsm.cur.Load().nextProducerID }
