package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit: v2-9
//
// Commits by group members are checked against the generation
// (ILLEGAL_GENERATION), membership (UNKNOWN_MEMBER_ID), static instance
// (FENCED_INSTANCE_ID) and state (REBALANCE_IN_PROGRESS while the leader
// assigns); commits with generation -1 (clients that assign partitions
// themselves) are accepted for groups without members. Unknown topics or
// partitions get UNKNOWN_TOPIC_OR_PARTITION, metadata over 4096 bytes
// OFFSET_METADATA_TOO_LARGE. Offsets are written to __consumer_offsets and
// fsynced before the answer. v0-1 are not served (removed in Kafka 4).
// For KIP-848 groups the generation is the member epoch: a newer epoch
// gets STALE_MEMBER_EPOCH, an older one is accepted only for partitions
// the member has held since then (KIP-1251).
// Offsets expire after offsets.retention.minutes as Kafka 2.1+ expires them;
// a v2-4 retention time other than -1 sets that commit's expire timestamp,
// as Kafka still honours it (package group, expire.go).
//
// Not yet: v10's topic ids.

func init() { register(8, 2, 9, handleOffsetCommit) }

func handleOffsetCommit(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.OffsetCommitRequest)
	if !b.offsetsTopicReady() {
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.CoordinatorNotAvailable.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return done(resp)
	}
	resp, finish := b.groups.of(req.Group).CommitOffsets(req)
	return &reply{resp: resp, ready: finish}, nil
}
