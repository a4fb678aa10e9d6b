package group

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeConsumerGroup answers ConsumerGroupDescribe for one group: a
// missing group or a classic one gets GROUP_ID_NOT_FOUND, as in Kafka.
func (c *Coordinator) DescribeConsumerGroup(id string) kmsg.ConsumerGroupDescribeResponseGroup {
	d := kmsg.NewConsumerGroupDescribeResponseGroup()
	d.Group = id
	d.AuthorizedOperations = -2147483648
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[id]
	switch {
	case c.closed:
		d.ErrorCode = c.closedErr.Code
		return d
	case g == nil || g.cg == nil:
		d.ErrorCode = kerr.GroupIDNotFound.Code
		msg := "Group " + id + " not found."
		if g != nil {
			msg = "Group " + id + " is not a consumer group."
		}
		d.ErrorMessage = &msg
		return d
	}
	cg := g.cg
	d.State, d.Epoch, d.AssignmentEpoch, d.AssignorName = cg.stateName(), cg.epoch, cg.assignmentEpoch, cg.assignorName()
	for _, m := range cg.sortedMembers() {
		dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		dm.MemberID, dm.InstanceID, dm.RackID, dm.MemberEpoch = m.id, m.instanceID, m.rackID, m.epoch
		dm.ClientID, dm.ClientHost = m.clientID, m.clientHost
		dm.SubscribedTopics = slices.Clone(m.topics)
		if dm.SubscribedTopics == nil {
			dm.SubscribedTopics = []string{}
		}
		dm.SubscribedTopicRegex = m.regex
		dm.Assignment = cg.describeAssignment(m.assigned)
		dm.TargetAssignment = cg.describeAssignment(cg.target[m.id])
		dm.MemberType = 1 // consumer protocol (v1)
		d.Members = append(d.Members, dm)
	}
	return d
}

func (cg *consumerGroup) sortedMembers() []*cmember {
	ms := make([]*cmember, 0, len(cg.members))
	for _, m := range cg.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *cmember) int { return strings.Compare(a.id, b.id) })
	return ms
}

func (cg *consumerGroup) describeAssignment(s partSet) kmsg.Assignment {
	a := kmsg.NewAssignment()
	a.TopicPartitions = []kmsg.AssignmentTopicPartition{}
	for _, t := range s.byTopic() {
		at := kmsg.NewAssignmentTopicPartition()
		at.TopicID, at.Topic, at.Partitions = t.id, cg.subscribed[t.id].Name, t.parts
		a.TopicPartitions = append(a.TopicPartitions, at)
	}
	return a
}

// describeConsumerClassic describes a KIP-848 group through the classic
// DescribeGroups API, as Kafka does: protocol type "consumer", the
// assignor as protocol, and each member's subscription and assignment in
// the classic consumer protocol's encoding, so older tools can read them.
func (c *Coordinator) describeConsumerClassic(g *group, d kmsg.DescribeGroupsResponseGroup) kmsg.DescribeGroupsResponseGroup {
	cg := g.cg
	d.State, d.ProtocolType, d.Protocol = cg.stateName(), "consumer", cg.assignorName()
	for _, m := range cg.sortedMembers() {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID, dm.InstanceID, dm.ClientID, dm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
		meta := kmsg.NewConsumerMemberMetadata()
		meta.Version = 3
		for _, t := range cg.subscribed {
			if m.subscribes(t.Name) {
				meta.Topics = append(meta.Topics, t.Name)
			}
		}
		slices.Sort(meta.Topics)
		meta.Generation, meta.Rack = m.epoch, m.rackID
		assign := kmsg.NewConsumerMemberAssignment()
		assign.Version = 3
		for _, t := range m.assigned.byTopic() {
			at := kmsg.NewConsumerMemberAssignmentTopic()
			at.Topic, at.Partitions = cg.subscribed[t.id].Name, t.parts
			assign.Topics = append(assign.Topics, at)
		}
		dm.ProtocolMetadata, dm.MemberAssignment = meta.AppendTo(nil), assign.AppendTo(nil)
		d.Members = append(d.Members, dm)
	}
	return d
}
