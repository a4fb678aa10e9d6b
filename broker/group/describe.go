package group

import (
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroup answers DescribeGroups for one group. An unknown group is
// described as Dead without an error, as Kafka does. Members carry their
// metadata and assignment only in a Stable group.
func (c *Coordinator) DescribeGroup(id string) kmsg.DescribeGroupsResponseGroup {
	d := kmsg.NewDescribeGroupsResponseGroup()
	d.Group = id
	d.AuthorizedOperations = -2147483648
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		d.ErrorCode = c.closedErr.Code
		return d
	}
	g := c.groups[id]
	if g == nil {
		d.State = Dead.String()
		return d
	}
	if g.cg != nil {
		return c.describeConsumerClassic(g, d)
	}
	d.State, d.ProtocolType, d.Protocol = g.state.String(), g.protocolType, g.protocol
	for _, m := range g.sortedMembers() {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID, dm.InstanceID, dm.ClientID, dm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
		dm.ProtocolMetadata, dm.MemberAssignment = []byte{}, []byte{}
		if g.state == Stable {
			dm.ProtocolMetadata, dm.MemberAssignment = m.metadata(g.protocol), m.assignment
		}
		d.Members = append(d.Members, dm)
	}
	return d
}

// ListGroups lists the groups, filtered by state names and group types
// ("classic", "consumer"), any case, when the filters are not empty.
func (c *Coordinator) ListGroups(states, types []string) []kmsg.ListGroupsResponseGroup {
	c.mu.Lock()
	defer c.mu.Unlock()
	matches := func(filter []string, v string) bool {
		if len(filter) == 0 {
			return true
		}
		for _, f := range filter {
			if strings.EqualFold(f, v) {
				return true
			}
		}
		return false
	}
	var out []kmsg.ListGroupsResponseGroup
	for _, g := range c.groups {
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState = g.id, g.protocolType, g.state.String()
		lg.GroupType = "classic"
		if g.cg != nil {
			lg.GroupState, lg.GroupType = g.cg.stateName(), "consumer"
		}
		if matches(states, lg.GroupState) && matches(types, lg.GroupType) {
			out = append(out, lg)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}

// DeleteGroups deletes empty groups with their offsets: one code per
// group, and finish, which waits for the tombstones to be durable.
func (c *Coordinator) DeleteGroups(ids []string) ([]int16, func()) {
	codes := make([]int16, len(ids))
	type write struct {
		i    int
		wait <-chan error
	}
	var writes []write
	c.mu.Lock()
	for i, id := range ids {
		g := c.groups[id]
		switch {
		case id == "":
			codes[i] = kerr.InvalidGroupID.Code
		case c.closed:
			codes[i] = c.closedErr.Code
		case g == nil:
			codes[i] = kerr.GroupIDNotFound.Code
		case g.state != Empty || len(g.members) > 0:
			codes[i] = kerr.NonEmptyGroup.Code
		default:
			recs := []Record{{Key: groupKey(id)}}
			if g.cg != nil {
				recs = groupTombstones(id)
			}
			for t, ps := range g.offsets {
				for p := range ps {
					recs = append(recs, Record{Key: offsetKey(id, t, p)})
				}
			}
			g.token++
			for _, t := range g.pending {
				t.Stop()
			}
			delete(c.groups, id)
			writes = append(writes, write{i, c.cfg.Log.Append(id, recs)})
		}
	}
	c.mu.Unlock()
	return codes, func() {
		for _, w := range writes {
			if err := <-w.wait; err != nil {
				c.cfg.Logger.Error("write group tombstones", "group", ids[w.i], "err", err)
				codes[w.i] = kerr.CoordinatorNotAvailable.Code
			}
		}
	}
}

// Committed is one committed offset, for metrics and tools.
type Committed struct {
	Group, Topic string
	Partition    int32
	Offset       int64
}

// Snapshot counts the groups by state and lists every committed offset.
func (c *Coordinator) Snapshot() (states map[string]int, offsets []Committed) {
	c.mu.Lock()
	defer c.mu.Unlock()
	states = map[string]int{}
	for _, s := range []State{Empty, PreparingRebalance, CompletingRebalance, Stable} {
		states[s.String()] = 0
	}
	for _, g := range c.groups {
		if g.cg != nil {
			states[g.cg.stateName()]++
		} else {
			states[g.state.String()]++
		}
		for t, ps := range g.offsets {
			for p, o := range ps {
				offsets = append(offsets, Committed{Group: g.id, Topic: t, Partition: p, Offset: o.offset})
			}
		}
	}
	return states, offsets
}
