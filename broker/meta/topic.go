package meta

import (
	"errors"
	"maps"
	"slices"
)

// Errors returned by Store mutations. They are sentinels: callers compare with
// errors.Is, because the returned values may carry the topic name as context.
var (
	ErrTopicExists        = errors.New("meta: topic already exists")
	ErrUnknownTopic       = errors.New("meta: unknown topic")
	ErrInvalidPartitions  = errors.New("meta: invalid partition count")
	errBadCommand         = errors.New("meta: malformed command")
	errUnsupportedCommand = errors.New("meta: unsupported command")
	errTopicIDInUse       = errors.New("meta: topic id already in use")
	errPartitionsChanged  = errors.New("meta: partition count changed concurrently")
)

// Topic is one topic of the cluster metadata. Values returned by Store are deep
// copies the caller may modify.
type Topic struct {
	Name       string
	ID         [16]byte          // random UUID chosen when the topic was created
	Partitions []Partition       // index = partition number
	Configs    map[string]string // only explicitly set configs; never nil in returned copies
	Internal   bool
}

// Partition is the replica assignment and leadership of one partition.
type Partition struct {
	Leader      int32 // -1 while no replica can lead (offline)
	LeaderEpoch int32 // bumped on every leader change
	Replicas    []int32
	ISR         []int32
	// PartitionEpoch is bumped on every change of the partition (leader,
	// ISR, replicas): updates carry the epoch they were computed from and
	// are refused when it moved meanwhile (Kafka's partition epoch).
	PartitionEpoch int32
	// Adding and Removing are the replicas an ongoing reassignment adds and
	// removes (Kafka's names); Replicas holds both meanwhile.
	Adding   []int32
	Removing []int32
}

// TopicSpec asks for a new topic. The broker validates names, counts and config
// values before it gets here.
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	Configs           map[string]string
	Internal          bool
	// Assignment, when set, is the replica list of every partition (a
	// manual assignment, or placement the caller chose); otherwise the
	// store places ReplicationFactor replicas per partition over Brokers.
	Assignment [][]int32
	// Brokers are the brokers placement may use (the live ones); empty
	// means this node alone.
	Brokers []Broker
}

// clone returns a deep copy of t. The replica and ISR slices of all partitions
// share one backing array, so a copy costs three allocations whatever the
// partition count.
func (t *Topic) clone() Topic {
	c := *t
	n := 0
	for i := range t.Partitions {
		n += len(t.Partitions[i].Replicas) + len(t.Partitions[i].ISR)
	}
	ids := make([]int32, 0, n)
	c.Partitions = make([]Partition, len(t.Partitions))
	for i, p := range t.Partitions {
		p.Replicas, ids = carve(ids, p.Replicas)
		p.ISR, ids = carve(ids, p.ISR)
		p.Adding, p.Removing = slices.Clone(p.Adding), slices.Clone(p.Removing)
		c.Partitions[i] = p
	}
	c.Configs = cloneConfigs(t.Configs)
	return c
}

// carve appends src to buf and returns the appended part, capped so that an
// append by the caller cannot overwrite its neighbour, and the grown buf.
func carve(buf, src []int32) ([]int32, []int32) {
	start := len(buf)
	buf = append(buf, src...)
	return buf[start:len(buf):len(buf)], buf
}

// cloneConfigs copies m, returning an empty map rather than nil.
func cloneConfigs(m map[string]string) map[string]string {
	if len(m) == 0 {
		return map[string]string{}
	}
	return maps.Clone(m)
}
