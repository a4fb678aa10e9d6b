// Package group is the classic consumer-group coordinator: group membership
// and rebalances (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) and committed
// offsets, for any protocol type (consumer, connect, ...). The coordinator
// keeps its state in memory and writes every change to a Log in the layout
// of Kafka's __consumer_offsets, from which Load rebuilds it at start.
//
// The package knows nothing of partitions or the network: the broker maps a
// group to its __consumer_offsets partition and waits for fsyncs.
package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// State is a classic group's state, named as Kafka names them in
// DescribeGroups and ListGroups.
type State int

const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
)

func (s State) String() string {
	switch s {
	case Empty:
		return "Empty"
	case PreparingRebalance:
		return "PreparingRebalance"
	case CompletingRebalance:
		return "CompletingRebalance"
	case Stable:
		return "Stable"
	}
	return "Dead"
}

// group is one classic group. All fields are guarded by Coordinator.mu.
type group struct {
	id           string
	state        State
	stateTime    time.Time // when state began; zero if a loaded Empty group's record did not say
	protocolType string
	protocol     string // chosen at the end of each join phase
	generation   int32
	leader       string
	members      map[string]*member
	static       map[string]string      // group.instance.id → member id
	pending      map[string]*time.Timer // member ids handed out with MEMBER_ID_REQUIRED
	offsets      map[string]map[int32]offset
	joinOrder    int64     // counter ordering members by first join (leader choice)
	rebalanceAt  time.Time // when the current rebalance started

	timer        *time.Timer     // initial delay, rebalance or sync timeout
	token        int             // invalidates stale timer callbacks
	awaitingSync map[string]bool // members of this generation yet to send SyncGroup
	initial      bool            // the initial delay runs
	initialLeft  time.Duration
	newMemberSet bool // a member joined during the initial delay

	cg         *consumerGroup // KIP-848 state; nil for a classic group
	committing int            // offset commits written but not yet durable; expiry waits

	// txnOffsets are offsets committed by ongoing transactions, by
	// producer id (txn_offsets.go).
	txnOffsets map[int64]map[string]map[int32]offset
}

// member is one member of a group.
type member struct {
	id               string
	instanceID       *string
	clientID         string
	clientHost       string
	protocols        []kmsg.JoinGroupRequestProtocol
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	assignment       []byte
	order            int64
	lastSeen         time.Time

	join chan *kmsg.JoinGroupResponse // a JoinGroup waiting for the join phase to end
	sync chan *kmsg.SyncGroupResponse // a SyncGroup waiting for the leader's assignment
}

// offset is one committed offset.
type offset struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	timestamp   int64
	expireAt    int64  // ms; an OffsetCommit v2-4 retention time, 0 when none
	seq         uint64 // order of the write in the log; a later write wins
}

func newGroup(id string, now time.Time) *group {
	return &group{
		id: id, state: Empty, stateTime: now,
		members: map[string]*member{}, static: map[string]string{},
		pending: map[string]*time.Timer{}, offsets: map[string]map[int32]offset{},
	}
}

func (g *group) setState(s State, now time.Time) {
	g.state, g.stateTime = s, now
}

// metadata returns m's metadata for protocol name.
func (m *member) metadata(name string) []byte {
	for _, p := range m.protocols {
		if p.Name == name {
			return p.Metadata
		}
	}
	return nil
}

// sameProtocols reports whether a rejoin changes nothing in m's protocols.
func (m *member) sameProtocols(ps []kmsg.JoinGroupRequestProtocol) bool {
	if len(ps) != len(m.protocols) {
		return false
	}
	for i, p := range ps {
		if p.Name != m.protocols[i].Name || string(p.Metadata) != string(m.protocols[i].Metadata) {
			return false
		}
	}
	return true
}

// supports reports whether every member other than except, and the
// protocols ps, share at least one protocol name.
func (g *group) supports(protocolType string, ps []kmsg.JoinGroupRequestProtocol, except string) bool {
	if len(ps) == 0 || protocolType == "" {
		return false
	}
	others := 0
	for id := range g.members {
		if id != except {
			others++
		}
	}
	if others == 0 {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range ps {
		all := true
		for id, m := range g.members {
			if id != except && !m.hasProtocol(p.Name) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func (m *member) hasProtocol(name string) bool {
	for _, p := range m.protocols {
		if p.Name == name {
			return true
		}
	}
	return false
}

// selectProtocol picks the protocol every member supports that most members
// list first among those, as Kafka's vote does.
func (g *group) selectProtocol() string {
	var first *member
	for _, m := range g.members {
		if first == nil || m.order < first.order {
			first = m
		}
	}
	if first == nil {
		return ""
	}
	var candidates []string
	for _, p := range first.protocols {
		all := true
		for _, m := range g.members {
			if !m.hasProtocol(p.Name) {
				all = false
				break
			}
		}
		if all {
			candidates = append(candidates, p.Name)
		}
	}
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, c := range candidates {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// allJoined reports whether the join phase may end: every member has a
// JoinGroup waiting and no member id handed out is still to come.
func (g *group) allJoined() bool {
	for _, m := range g.members {
		if m.join == nil {
			return false
		}
	}
	return len(g.pending) == 0
}

// rebalanceTimeout is the longest rebalance timeout of the members.
func (g *group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// subscribedTopics lists the topics the members of a consumer group
// subscribe to; ok is false when they cannot be known (another protocol
// type or unreadable metadata).
func (g *group) subscribedTopics() (topics map[string]bool, ok bool) {
	if g.cg != nil {
		topics = map[string]bool{}
		for _, t := range g.cg.subscribed {
			topics[t.Name] = true
		}
		return topics, true
	}
	if g.protocolType != "consumer" || g.protocol == "" {
		return nil, len(g.members) == 0
	}
	topics = map[string]bool{}
	for _, m := range g.members {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(m.metadata(g.protocol)); err != nil {
			return nil, false
		}
		for _, t := range meta.Topics {
			topics[t] = true
		}
	}
	return topics, true
}
