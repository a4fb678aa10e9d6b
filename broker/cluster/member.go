// Package cluster joins Sluice nodes into one cluster, the way Consul and
// Nomad do: hashicorp/memberlist gossip says who is there (gossip.go), and the
// raft leader of the metadata quorum turns that membership into raft
// configuration changes and broker registrations (quorum.go). Membership
// events go in; raft proposals come out. Data replication is not here.
package cluster

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// RoleBroker is the role that makes a node a broker and eligible for the
// metadata quorum (controller-eligible).
const RoleBroker = "broker"

// State is a member's gossip state.
type State string

const (
	StateAlive State = "alive"
	StateDead  State = "dead" // failed: may come back, stays in the quorum
	StateLeft  State = "left" // left gracefully: removed from the quorum
)

// Member is one node as gossip knows it. Everything but Addr and State is
// the node's own gossip metadata.
type Member struct {
	ID    int32  `json:"id"`
	Kafka string `json:"kafka"` // advertised Kafka host:port
	// Internal is the Kafka host:port other nodes use (replication,
	// forwarded writes) when it differs from the advertised one, as a
	// Kafka inter-broker listener does.
	Internal string   `json:"internal,omitempty"`
	Raft     string   `json:"raft"` // raft host:port
	Roles    []string `json:"roles,omitempty"`
	Rack     string   `json:"rack,omitempty"`
	// Bootstrapped is set once the node has raft state: a fresh node that
	// sees it on anyone joins that cluster instead of bootstrapping one.
	Bootstrapped bool `json:"boot,omitempty"`
	// Leaving is gossiped just before a graceful leave. memberlist's leave
	// event does not tell a leave from a failure, so a member whose last
	// metadata says Leaving is taken to have left, any other one to be dead.
	Leaving bool `json:"leaving,omitempty"`
	// Incarnation is random and new at every start of the process: a
	// registration with a new one gets a new broker epoch (meta.Broker).
	Incarnation string `json:"inc,omitempty"`

	Addr  string `json:"-"` // gossip host:port
	State State  `json:"-"`
}

// Eligible reports whether the member can be a voter of the metadata quorum.
func (m Member) Eligible() bool { return slices.Contains(m.Roles, RoleBroker) }

// Alive reports whether gossip considers the member up. (A suspected member
// is still alive: memberlist reports no event until it declares it dead.)
func (m Member) Alive() bool { return m.State == StateAlive }

// nodeName is the memberlist name of a node id. One name per id makes a
// second process with the same id a name conflict, which memberlist detects.
func nodeName(id int32) string { return "sluice-" + strconv.Itoa(int(id)) }

// encodeMeta is the gossip metadata of m; memberlist limits it to limit bytes.
func encodeMeta(m Member, limit int) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode node metadata: %w", err)
	}
	if len(b) > limit {
		return nil, fmt.Errorf("node metadata is %d bytes, over gossip's limit of %d", len(b), limit)
	}
	return b, nil
}

// decodeMeta reads another node's metadata; name is its memberlist name.
func decodeMeta(name string, b []byte) (Member, error) {
	var m Member
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("node %s metadata: %w", name, err)
	}
	if nodeName(m.ID) != name {
		return m, fmt.Errorf("node %s metadata claims id %d", name, m.ID)
	}
	return m, nil
}

// ParseRoles splits a comma-separated role list.
func ParseRoles(s string) []string {
	var out []string
	for _, r := range strings.Split(s, ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

// NewIncarnation returns a random incarnation id: 22 characters of
// base64url, like Kafka's incarnation UUIDs.
func NewIncarnation() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b[:])
}
