package group

import (
	"regexp"
	"slices"
	"time"
)

// The next-generation consumer group protocol (KIP-848): members send
// ConsumerGroupHeartbeat with their subscription and the partitions they
// own; the coordinator computes a target assignment with a server-side
// assignor and moves each member towards it, revoking before assigning.
//
// Epochs: the group epoch is bumped whenever membership, a subscription or
// the subscribed topics change; the target assignment is recomputed at
// once and carries that epoch (the assignment epoch); each member's epoch
// reaches the assignment epoch once nothing it must give up is still in
// its hands. A partition is never assigned to a member while another
// member still owns it or has not acknowledged its revocation.

// TopicInfo is what the server-side assignors know of a topic.
type TopicInfo struct {
	Name       string
	ID         [16]byte
	Partitions int32
}

// memberState is where a member is in its reconciliation, with Kafka's
// numbering (ConsumerGroupCurrentMemberAssignmentValue.State).
type memberState int8

const (
	memberStable     memberState = 0 // owns exactly its target
	memberUnrevoked  memberState = 1 // must give up partitions first
	memberUnreleased memberState = 2 // waits for partitions others still own
)

func (s memberState) String() string {
	switch s {
	case memberUnrevoked:
		return "UNREVOKED_PARTITIONS"
	case memberUnreleased:
		return "UNRELEASED_PARTITIONS"
	}
	return "STABLE"
}

// tp is one partition, by topic id.
type tp struct {
	topic [16]byte
	part  int32
}

// partSet is a set of partitions; the value is the member epoch at which
// the partition was assigned (KIP-1251), 0 where it does not matter.
type partSet map[tp]int32

func (s partSet) equal(o partSet) bool {
	if len(s) != len(o) {
		return false
	}
	for p := range s {
		if _, ok := o[p]; !ok {
			return false
		}
	}
	return true
}

// byTopic lists s as topic id → sorted partitions, topics sorted by id.
func (s partSet) byTopic() []topicParts {
	m := map[[16]byte][]int32{}
	for p := range s {
		m[p.topic] = append(m[p.topic], p.part)
	}
	out := make([]topicParts, 0, len(m))
	for id, ps := range m {
		slices.Sort(ps)
		out = append(out, topicParts{id, ps})
	}
	slices.SortFunc(out, func(a, b topicParts) int { return compareID(a.id, b.id) })
	return out
}

type topicParts struct {
	id    [16]byte
	parts []int32
}

func compareID(a, b [16]byte) int {
	for i := range a {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return 0
}

// consumerGroup is the KIP-848 state of a group (group.cg). Guarded by
// Coordinator.mu.
type consumerGroup struct {
	epoch           int32 // group epoch
	assignmentEpoch int32 // epoch of target
	members         map[string]*cmember
	static          map[string]string  // group.instance.id → member id
	target          map[string]partSet // member id → target assignment
	owners          map[tp]string      // partition → member that holds it (assigned or revoking)

	topicsVersion uint64                 // metadata version subscriptions were resolved at
	subscribed    map[[16]byte]TopicInfo // topics some member subscribes to
	metadataHash  uint64                 // hash of subscribed (ids, partition counts)
}

// cmember is one member of a consumer group.
type cmember struct {
	id               string
	instanceID       *string
	rackID           *string
	clientID         string
	clientHost       string
	topics           []string // subscribed names, sorted
	regex            *string  // subscribed regular expression
	re               *regexp.Regexp
	assignor         string // requested server assignor, "" for the default
	rebalanceTimeout time.Duration

	epoch, prevEpoch int32
	state            memberState
	assigned         partSet // partitions the member may consume
	revoking         partSet // partitions it must give up before moving on
	revokeSince      time.Time
	staticLeft       bool // left with epoch -2: keeps its assignment until the session ends

	lastSeen time.Time
	sent     partSet // assignment last sent to the member
	token    int     // invalidates the member's session timer
}

func newConsumerGroup() *consumerGroup {
	return &consumerGroup{
		members: map[string]*cmember{}, static: map[string]string{},
		target: map[string]partSet{}, owners: map[tp]string{},
		subscribed: map[[16]byte]TopicInfo{},
	}
}

// stateName is the group's state as ConsumerGroupDescribe and ListGroups
// name it.
func (cg *consumerGroup) stateName() string {
	switch {
	case len(cg.members) == 0:
		return "Empty"
	case cg.epoch != cg.assignmentEpoch:
		return "Assigning"
	}
	for _, m := range cg.members {
		if m.epoch != cg.assignmentEpoch || m.state != memberStable {
			return "Reconciling"
		}
	}
	return "Stable"
}

// subscribes reports whether m subscribes to topic name.
func (m *cmember) subscribes(name string) bool {
	if _, ok := slices.BinarySearch(m.topics, name); ok {
		return true
	}
	return m.re != nil && m.re.MatchString(name)
}

// release drops every claim m holds on partitions.
func (cg *consumerGroup) release(m *cmember) {
	for p := range m.assigned {
		if cg.owners[p] == m.id {
			delete(cg.owners, p)
		}
	}
	for p := range m.revoking {
		if cg.owners[p] == m.id {
			delete(cg.owners, p)
		}
	}
}
