package meta

import (
	"fmt"
	"net"
	"slices"
	"strconv"
)

// Broker registrations: the leader of the quorum writes one for every member
// gossip reports (package cluster), so every node lists the same brokers in
// Metadata. A registration stays after the broker leaves; whether it is alive
// is gossip's business, not the log's.
//
// Broker epochs, as in Kafka's KRaft: every `sluice serve` process has a
// random incarnation id, and a registration carrying a new incarnation gets
// a new broker epoch, the raft index of that registration. Requests a broker
// makes as a member of the cluster (AlterPartition) carry its epoch, so the
// controller can tell a request of the running process from one of a process
// that has since restarted. A new incarnation of a broker that was already
// registered starts fenced (fencing.go): the controller first takes its old
// incarnation's leaderships and ISR places away, as for a dead broker.

const cmdRegisterBroker = "register_broker"

// Broker is one registered broker.
type Broker struct {
	ID    int32    `json:"id"`
	Host  string   `json:"host"` // advertised Kafka host
	Port  int32    `json:"port"` // advertised Kafka port
	Rack  string   `json:"rack,omitempty"`
	Roles []string `json:"roles,omitempty"`
	// Internal is the host:port other brokers reach this one at, when it
	// differs from the advertised Host:Port (an inter-broker listener).
	Internal string `json:"internal,omitempty"`
	// Incarnation identifies the process that registered; a restart makes
	// a new one. Empty in registrations written before broker epochs.
	Incarnation string `json:"incarnation,omitempty"`

	// Epoch and Fenced are set by the log, never by the proposer. Epoch is
	// the raft index of the registration of this incarnation; 0 means
	// unknown (a registration from before broker epochs), which matches no
	// request. Fenced is set while a restarted broker's old incarnation
	// may still hold leaderships or ISR places.
	Epoch  int64 `json:"epoch,omitempty"`
	Fenced bool  `json:"fenced,omitempty"`
}

// Addr is the address other brokers use to reach this one.
func (b Broker) Addr() string {
	if b.Internal != "" {
		return b.Internal
	}
	return net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
}

// equal compares what a registration says, not the log's Epoch and Fenced.
func (b Broker) equal(o Broker) bool {
	return b.ID == o.ID && b.Host == o.Host && b.Port == o.Port && b.Rack == o.Rack && slices.Equal(b.Roles, o.Roles) &&
		b.Internal == o.Internal && b.Incarnation == o.Incarnation
}

type registerBrokerCmd struct {
	Broker Broker `json:"broker"`
}

func applyRegisterBroker(cur *state, c *registerBrokerCmd, index uint64) (*state, any) {
	if c.Broker.ID < 0 || c.Broker.Host == "" || c.Broker.Port <= 0 {
		return nil, fmt.Errorf("%w: broker %d at %s:%d", errBadCommand, c.Broker.ID, c.Broker.Host, c.Broker.Port)
	}
	old, had := cur.brokers[c.Broker.ID]
	if had && old.equal(c.Broker) {
		return nil, nil
	}
	b := c.Broker
	if had && old.Incarnation == b.Incarnation {
		// The same process with other data (an address it re-resolved):
		// still the same epoch.
		b.Epoch, b.Fenced = old.Epoch, old.Fenced
	} else {
		// A new process. One that was registered before restarted, maybe
		// faster than gossip notices a death: its old incarnation's
		// leaderships and ISR places are taken away before it gets any.
		b.Epoch, b.Fenced = int64(index), had
	}
	next := cur.next(index)
	next.brokers[b.ID] = b
	return next, nil
}

// RegisterBroker records (or updates) a broker's registration. Only the
// leader can: elsewhere it fails with ErrNotController. Epoch and Fenced of
// b are ignored: the log sets them.
func (s *Store) RegisterBroker(b Broker) error {
	if old, ok := s.fsm.cur.Load().brokers[b.ID]; ok && old.equal(b) {
		return nil
	}
	b.Epoch, b.Fenced = 0, false
	resp, err := s.propose(cmdRegisterBroker, registerBrokerCmd{Broker: b})
	if err != nil {
		return err
	}
	if e, ok := resp.(error); ok && e != nil {
		return e
	}
	return nil
}

// Brokers returns the registered brokers sorted by id.
func (s *Store) Brokers() []Broker {
	st := s.fsm.cur.Load()
	out := make([]Broker, 0, len(st.brokers))
	for _, b := range st.brokers {
		b.Roles = slices.Clone(b.Roles)
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Broker) int { return int(a.ID) - int(b.ID) })
	return out
}

// Broker returns the registration of broker id.
func (s *Store) Broker(id int32) (Broker, bool) {
	b, ok := s.fsm.cur.Load().brokers[id]
	b.Roles = slices.Clone(b.Roles)
	return b, ok
}
