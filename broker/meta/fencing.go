package meta

import (
	"errors"
	"fmt"
	"slices"
)

// Fencing of a restarted broker. Its new registration starts fenced
// (brokers.go); the controller treats a fenced broker as it treats a dead
// one, so the usual election takes the old incarnation's leaderships and
// ISR places away. Once none is left, the controller unfences it and the
// broker leads and joins ISRs again like any other, with its new epoch.
// Kafka's KRaft controller fences a re-registered broker in the same way.

const cmdUnfenceBroker = "unfence_broker"

// Errors of UnfenceBroker.
var (
	ErrStaleBrokerEpoch = errors.New("meta: broker epoch is not the registered one")
	ErrBrokerInUse      = errors.New("meta: fenced broker still leads or is in sync")
)

type unfenceBrokerCmd struct {
	ID    int32 `json:"id"`
	Epoch int64 `json:"epoch"`
}

func applyUnfenceBroker(cur *state, c *unfenceBrokerCmd, index uint64) (*state, any) {
	b, ok := cur.brokers[c.ID]
	switch {
	case !ok || b.Epoch != c.Epoch:
		// A later restart registered meanwhile: that one is fenced anew.
		return nil, fmt.Errorf("%w: broker %d at epoch %d, unfence for %d", ErrStaleBrokerEpoch, c.ID, b.Epoch, c.Epoch)
	case !b.Fenced:
		return nil, nil
	case !cur.fencedOut(c.ID):
		return nil, fmt.Errorf("%w: broker %d", ErrBrokerInUse, c.ID)
	}
	next := cur.next(index)
	b.Fenced = false
	next.brokers[c.ID] = b
	return next, nil
}

// fencedOut reports whether broker id leads no partition and is in the ISR
// of none that has a leader. An offline partition keeps its ISR (its last
// members may lead again), so the broker may stay in that one.
func (s *state) fencedOut(id int32) bool {
	for _, t := range s.byName {
		for _, p := range t.Partitions {
			if p.Leader == id || (p.Leader >= 0 && slices.Contains(p.ISR, id)) {
				return false
			}
		}
	}
	return true
}

// FencedOut reports whether fenced broker id may be unfenced: it leads no
// partition and is in no ISR but those of offline partitions.
func (s *Store) FencedOut(id int32) bool { return s.fsm.cur.Load().fencedOut(id) }

// UnfenceBroker lets broker id at epoch lead and join ISRs again. It fails
// with ErrStaleBrokerEpoch when the broker registered again meanwhile, and
// with ErrBrokerInUse unless FencedOut(id).
func (s *Store) UnfenceBroker(id int32, epoch int64) error {
	resp, err := s.propose(cmdUnfenceBroker, unfenceBrokerCmd{ID: id, Epoch: epoch})
	if err != nil {
		return err
	}
	if e, ok := resp.(error); ok && e != nil {
		return e
	}
	return nil
}
