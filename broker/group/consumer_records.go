package group

import (
	"regexp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
)

// KIP-848 groups are written to __consumer_offsets in Kafka's layout: the
// key starts with the record type (3 group epoch, 5 member subscription,
// 6 target assignment epoch, 7 member target, 8 member current
// assignment) followed by the group and member ids; the value is version 0
// of the type's flexible schema. Kafka's deprecated type 4 (subscribed
// topic metadata) is neither written nor needed.

const (
	recConsumerGroup    = 3
	recConsumerMember   = 5
	recTargetMetadata   = 6
	recTargetMember     = 7
	recCurrentAssignmnt = 8
)

func consumerKey(typ int16, group string, member *string) []byte {
	b := kbin.AppendInt16(nil, typ)
	b = kbin.AppendString(b, group)
	if member != nil {
		b = kbin.AppendString(b, *member)
	}
	return b
}

func valueHeader() []byte { return kbin.AppendInt16(nil, 0) }

func noTags(b []byte) []byte { return kbin.AppendUvarint(b, 0) }

func consumerGroupRecord(group string, cg *consumerGroup) Record {
	v := kbin.AppendInt32(valueHeader(), cg.epoch)
	v = kbin.AppendUvarint(v, 1) // one tagged field: MetadataHash (tag 0)
	v = kbin.AppendUvarint(v, 0)
	v = kbin.AppendUvarint(v, 8)
	v = kbin.AppendInt64(v, int64(cg.metadataHash))
	return Record{Key: consumerKey(recConsumerGroup, group, nil), Value: v}
}

func memberMetadataRecord(group string, m *cmember) Record {
	v := kbin.AppendCompactNullableString(valueHeader(), m.instanceID)
	v = kbin.AppendCompactNullableString(v, m.rackID)
	v = kbin.AppendCompactString(v, m.clientID)
	v = kbin.AppendCompactString(v, m.clientHost)
	v = kbin.AppendCompactArrayLen(v, len(m.topics))
	for _, t := range m.topics {
		v = kbin.AppendCompactString(v, t)
	}
	v = kbin.AppendCompactNullableString(v, m.regex)
	v = kbin.AppendInt32(v, int32(m.rebalanceTimeout/time.Millisecond))
	var assignor *string
	if m.assignor != "" {
		assignor = &m.assignor
	}
	v = kbin.AppendCompactNullableString(v, assignor)
	return Record{Key: consumerKey(recConsumerMember, group, &m.id), Value: noTags(v)}
}

func targetMetadataRecord(group string, epoch int32) Record {
	v := kbin.AppendInt32(valueHeader(), epoch)
	return Record{Key: consumerKey(recTargetMetadata, group, nil), Value: noTags(v)}
}

func targetMemberRecord(group, member string, s partSet) Record {
	v := appendTopicParts(valueHeader(), s, false)
	return Record{Key: consumerKey(recTargetMember, group, &member), Value: noTags(v)}
}

func currentAssignmentRecord(group string, m *cmember) Record {
	v := kbin.AppendInt32(valueHeader(), m.epoch)
	v = kbin.AppendInt32(v, m.prevEpoch)
	v = kbin.AppendInt8(v, int8(m.state))
	v = appendTopicParts(v, m.assigned, true)
	v = appendTopicParts(v, m.revoking, false)
	return Record{Key: consumerKey(recCurrentAssignmnt, group, &m.id), Value: noTags(v)}
}

// memberTombstones delete a member's records.
func memberTombstones(group, member string) []Record {
	return []Record{
		{Key: consumerKey(recCurrentAssignmnt, group, &member)},
		{Key: consumerKey(recTargetMember, group, &member)},
		{Key: consumerKey(recConsumerMember, group, &member)},
	}
}

// groupTombstones delete a consumer group's own records.
func groupTombstones(group string) []Record {
	return []Record{
		{Key: consumerKey(recTargetMetadata, group, nil)},
		{Key: consumerKey(recConsumerGroup, group, nil)},
	}
}

// appendTopicParts writes Kafka's TopicPartitions array; epochs adds the
// per-partition assignment epochs (tag 0, KIP-1251).
func appendTopicParts(b []byte, s partSet, epochs bool) []byte {
	topics := s.byTopic()
	b = kbin.AppendCompactArrayLen(b, len(topics))
	for _, t := range topics {
		b = kbin.AppendUuid(b, t.id)
		b = kbin.AppendCompactArrayLen(b, len(t.parts))
		for _, p := range t.parts {
			b = kbin.AppendInt32(b, p)
		}
		if !epochs {
			b = noTags(b)
			continue
		}
		var body []byte
		body = kbin.AppendCompactArrayLen(body, len(t.parts))
		for _, p := range t.parts {
			body = kbin.AppendInt32(body, s[tp{t.id, p}])
		}
		b = kbin.AppendUvarint(b, 1)
		b = kbin.AppendUvarint(b, 0)
		b = kbin.AppendUvarint(b, uint32(len(body)))
		b = append(b, body...)
	}
	return b
}

func readTopicParts(r *kbin.Reader) partSet {
	s := partSet{}
	n := r.CompactArrayLen()
	for i := int32(0); i < n && r.Ok(); i++ {
		id := r.Uuid()
		np := r.CompactArrayLen()
		var parts []int32
		for j := int32(0); j < np && r.Ok(); j++ {
			parts = append(parts, r.Int32())
		}
		var epochs []int32
		readTags(r, func(tag uint32, data []byte) {
			if tag != 0 {
				return
			}
			tr := kbin.Reader{Src: data}
			ne := tr.CompactArrayLen()
			for k := int32(0); k < ne && tr.Ok(); k++ {
				epochs = append(epochs, tr.Int32())
			}
		})
		for j, p := range parts {
			e := int32(0)
			if j < len(epochs) {
				e = epochs[j]
			}
			s[tp{id, p}] = e
		}
	}
	return s
}

// readTags reads a tagged-field section, handing each field to f.
func readTags(r *kbin.Reader, f func(tag uint32, data []byte)) {
	n := r.Uvarint()
	for i := uint32(0); i < n && r.Ok(); i++ {
		tag := r.Uvarint()
		size := r.Uvarint()
		data := r.Span(int(size))
		if r.Ok() {
			f(tag, data)
		}
	}
}

// loadConsumer applies one KIP-848 record read back from the log. The
// caller holds c.mu.
func (c *Coordinator) loadConsumer(typ int16, key, value []byte, now time.Time) error {
	kr := kbin.Reader{Src: key[2:]}
	groupID := kr.String()
	var memberID string
	if typ != recConsumerGroup && typ != recTargetMetadata {
		memberID = kr.String()
	}
	if err := kr.Complete(); err != nil {
		return errBadRecord
	}
	g := c.groups[groupID]
	if value == nil {
		if g == nil || g.cg == nil {
			return nil
		}
		switch typ {
		case recConsumerGroup:
			g.cg = nil
			g.protocolType = ""
			c.forgetIfEmpty(g)
		case recConsumerMember:
			delete(g.cg.members, memberID)
		case recTargetMember:
			delete(g.cg.target, memberID)
		}
		return nil
	}
	if g == nil {
		g = newGroup(groupID, now)
		c.groups[groupID] = g
	}
	if g.cg == nil {
		g.cg = newConsumerGroup()
		g.protocolType = "consumer"
	}
	cg := g.cg
	r := kbin.Reader{Src: value}
	if r.Int16() != 0 {
		return nil // a later schema version: skipped, as Kafka skips unknown versions
	}
	member := func() *cmember {
		m := cg.members[memberID]
		if m == nil {
			m = &cmember{id: memberID, assigned: partSet{}, lastSeen: now}
			cg.members[memberID] = m
		}
		return m
	}
	switch typ {
	case recConsumerGroup:
		cg.epoch = r.Int32()
		readTags(&r, func(tag uint32, data []byte) {
			if tag == 0 && len(data) == 8 {
				tr := kbin.Reader{Src: data}
				cg.metadataHash = uint64(tr.Int64())
			}
		})
	case recConsumerMember:
		m := member()
		m.instanceID, m.rackID = r.CompactNullableString(), r.CompactNullableString()
		m.clientID, m.clientHost = r.CompactString(), r.CompactString()
		m.topics = nil
		for i, n := int32(0), r.CompactArrayLen(); i < n && r.Ok(); i++ {
			m.topics = append(m.topics, r.CompactString())
		}
		slices.Sort(m.topics)
		m.regex = r.CompactNullableString()
		m.re = nil
		if m.regex != nil {
			m.re, _ = regexp.Compile("^(?:" + *m.regex + ")$")
		}
		m.rebalanceTimeout = time.Duration(r.Int32()) * time.Millisecond
		m.assignor = deref(r.CompactNullableString())
		readTags(&r, func(uint32, []byte) {})
	case recTargetMetadata:
		cg.assignmentEpoch = r.Int32()
		readTags(&r, func(uint32, []byte) {})
	case recTargetMember:
		cg.target[memberID] = readTopicParts(&r)
		readTags(&r, func(uint32, []byte) {})
	case recCurrentAssignmnt:
		m := member()
		m.epoch, m.prevEpoch = r.Int32(), r.Int32()
		m.state = memberState(r.Int8())
		m.assigned, m.revoking = readTopicParts(&r), readTopicParts(&r)
		m.staticLeft = m.epoch == -2
		readTags(&r, func(uint32, []byte) {})
	default:
		return nil // types Sluice does not use (share and streams groups, Kafka's type 4)
	}
	if err := r.Complete(); err != nil {
		return errBadRecord
	}
	return nil
}

// loadedConsumer finishes a KIP-848 group rebuilt from the log: who owns
// what, the static ids, sessions restarting now.
func (c *Coordinator) loadedConsumer(g *group, now time.Time) {
	cg := g.cg
	// Resolve the subscriptions now (offset deletes and descriptions need
	// them) but keep the logged hash: the first heartbeat compares with it
	// and starts a new epoch if topics changed while the broker was down.
	c.resolveSubscriptions(cg)
	cg.topicsVersion = 0
	cg.owners = map[tp]string{}
	for _, m := range cg.members {
		if m.instanceID != nil {
			cg.static[*m.instanceID] = m.id
		}
		for p := range m.assigned {
			cg.owners[p] = m.id
		}
		for p := range m.revoking {
			cg.owners[p] = m.id
		}
		if m.state == memberUnrevoked {
			m.revokeSince = now
		}
		m.lastSeen = now
		c.watchConsumer(g, m)
	}
	c.setConsumerState(g, now)
}
