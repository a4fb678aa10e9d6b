package broker

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker/meta"
)

// CreateTopics: v2-7
//
// Validates names, partition counts, replication factors, manual replica
// assignments and configs with Kafka's error codes and messages, then creates
// every valid topic in one metadata-log entry. validate_only checks without
// creating. v5+ answers the created topic's partitions, replication factor
// and configs; v7 its topic id.

func init() { register(19, 2, 7, handleCreateTopics) }

// maxPartitionsPerRequest bounds the partitions one CreateTopics or
// CreatePartitions request may add (KRaft's limit of records per user
// operation), so one request cannot make the broker allocate without bound.
const maxPartitionsPerRequest = 10_000

func handleCreateTopics(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	var specs []meta.TopicSpec
	var specIdx []int
	budget := int32(maxPartitionsPerRequest)
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		spec, code, msg := b.checkCreateTopic(&rt, seen[rt.Topic] > 1)
		if code == 0 && spec.Partitions > budget {
			code, msg = kerr.PolicyViolation.Code, fmt.Sprintf("Excessively large number of partitions per request: at most %d.", maxPartitionsPerRequest)
		} else if code == 0 {
			budget -= spec.Partitions
		}
		if code == 0 && !req.ValidateOnly {
			specs = append(specs, spec)
			specIdx = append(specIdx, len(resp.Topics))
		}
		st.ErrorCode = code
		if msg != "" {
			st.ErrorMessage = &msg
		}
		if code == 0 {
			st.NumPartitions, st.ReplicationFactor = spec.Partitions, spec.ReplicationFactor
			st.Configs = createdConfigs(b, spec.Configs)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(specs) == 0 {
		return done(resp)
	}
	errs := b.meta.CreateTopics(specs)
	if err := b.reconcile(); err != nil {
		b.logger.Error("open created topics", "err", err)
	}
	for i, err := range errs {
		st := &resp.Topics[specIdx[i]]
		switch {
		case err == nil:
			if t, ok := b.meta.Topic(st.Topic); ok {
				st.TopicID = t.ID
			}
		case errors.Is(err, meta.ErrTopicExists):
			st.ErrorCode = kerr.TopicAlreadyExists.Code
			msg := fmt.Sprintf("Topic '%s' already exists.", st.Topic)
			st.ErrorMessage = &msg
		case notController(err):
			st.ErrorCode = kerr.NotController.Code
		default:
			st.ErrorCode = kerr.UnknownServerError.Code
			msg := err.Error()
			st.ErrorMessage = &msg
		}
		if err != nil {
			st.NumPartitions, st.ReplicationFactor, st.Configs = -1, -1, nil
		}
	}
	return done(resp)
}

// checkCreateTopic validates one requested topic and returns what to create.
func (b *Broker) checkCreateTopic(rt *kmsg.CreateTopicsRequestTopic, dup bool) (meta.TopicSpec, int16, string) {
	spec := meta.TopicSpec{Name: rt.Topic, Partitions: rt.NumPartitions, ReplicationFactor: rt.ReplicationFactor, Configs: map[string]string{}}
	// Kafka's internal topics are internal by name, however created: a
	// follower forwards its __consumer_offsets and __transaction_state here.
	spec.Internal = rt.Topic == offsetsTopic || rt.Topic == txnTopic
	if dup {
		return spec, kerr.InvalidRequest.Code, fmt.Sprintf("Create topics request from client contains multiple entries for topic %s.", rt.Topic)
	}
	if err := validateTopicName(rt.Topic); err != nil {
		return spec, kerr.InvalidTopicException.Code, err.Error()
	}
	if _, exists := b.meta.Topic(rt.Topic); exists {
		return spec, kerr.TopicAlreadyExists.Code, fmt.Sprintf("Topic '%s' already exists.", rt.Topic)
	}
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return spec, kerr.InvalidRequest.Code, "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time."
		}
		for i, a := range rt.ReplicaAssignment {
			if a.Partition != int32(i) {
				return spec, kerr.InvalidReplicaAssignment.Code, "Partitions should be numbered 0 to N-1 in the replica assignment."
			}
			if msg := b.checkReplicas(a.Replicas); msg != "" {
				return spec, kerr.InvalidReplicaAssignment.Code, msg
			}
		}
		spec.Partitions = int32(len(rt.ReplicaAssignment))
		spec.ReplicationFactor = int16(len(rt.ReplicaAssignment[0].Replicas))
		for _, a := range rt.ReplicaAssignment {
			spec.Assignment = append(spec.Assignment, a.Replicas)
		}
	}
	if spec.Partitions == -1 {
		spec.Partitions = b.cfg.NumPartitions
	}
	if spec.ReplicationFactor == -1 {
		spec.ReplicationFactor = b.defaultRF()
	}
	if spec.Partitions <= 0 {
		return spec, kerr.InvalidPartitions.Code, "Number of partitions must be larger than 0."
	}
	if spec.ReplicationFactor <= 0 {
		return spec, kerr.InvalidReplicationFactor.Code, "Replication factor must be larger than 0."
	}
	spec.Brokers = b.placementBrokers()
	if brokers := len(spec.Brokers); int(spec.ReplicationFactor) > brokers {
		return spec, kerr.InvalidReplicationFactor.Code, fmt.Sprintf("Replication factor: %d larger than available brokers: %d.", spec.ReplicationFactor, brokers)
	}
	for _, c := range rt.Configs {
		if err := validateTopicConfig(c.Name, c.Value); err != nil {
			return spec, kerr.InvalidConfig.Code, err.Error()
		}
		spec.Configs[c.Name] = *c.Value
	}
	return spec, 0, ""
}

// checkReplicas validates a manual replica list against the live brokers.
func (b *Broker) checkReplicas(replicas []int32) string {
	if len(replicas) == 0 {
		return "Replica assignment must not be empty."
	}
	seen := map[int32]bool{}
	alive := b.eligibleBrokers()
	for _, id := range replicas {
		if seen[id] {
			return fmt.Sprintf("Duplicate broker id %d in replica assignment.", id)
		}
		seen[id] = true
		if !alive[id] {
			return fmt.Sprintf("Broker %d in replica assignment is not a live broker.", id)
		}
	}
	return ""
}

// createdConfigs lists the effective configs of a topic being created
// (CreateTopics v5+).
func createdConfigs(b *Broker, explicit map[string]string) []kmsg.CreateTopicsResponseTopicConfig {
	v := topicView{explicit: explicit, broker: b.cfg.Settings}
	out := make([]kmsg.CreateTopicsResponseTopicConfig, 0, len(topicConfigs))
	for _, d := range topicConfigs {
		val, src := v.get(d.name)
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		c.Name, c.Value, c.Source = d.name, &val, src
		out = append(out, c)
	}
	return out
}
