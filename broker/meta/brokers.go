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
}

// Addr is the address other brokers use to reach this one.
func (b Broker) Addr() string {
	if b.Internal != "" {
		return b.Internal
	}
	return net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
}

func (b Broker) equal(o Broker) bool {
	return b.ID == o.ID && b.Host == o.Host && b.Port == o.Port && b.Rack == o.Rack && slices.Equal(b.Roles, o.Roles) && b.Internal == o.Internal
}

type registerBrokerCmd struct {
	Broker Broker `json:"broker"`
}

func applyRegisterBroker(cur *state, c *registerBrokerCmd, index uint64) (*state, any) {
	if c.Broker.ID < 0 || c.Broker.Host == "" || c.Broker.Port <= 0 {
		return nil, fmt.Errorf("%w: broker %d at %s:%d", errBadCommand, c.Broker.ID, c.Broker.Host, c.Broker.Port)
	}
	if old, ok := cur.brokers[c.Broker.ID]; ok && old.equal(c.Broker) {
		return nil, nil
	}
	next := cur.next(index)
	next.brokers[c.Broker.ID] = c.Broker
	return next, nil
}

// RegisterBroker records (or updates) a broker's registration. Only the
// leader can: elsewhere it fails with ErrNotController.
func (s *Store) RegisterBroker(b Broker) error {
	if old, ok := s.fsm.cur.Load().brokers[b.ID]; ok && old.equal(b) {
		return nil
	}
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
