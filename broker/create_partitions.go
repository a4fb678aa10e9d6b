package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreatePartitions: v0-3
//
// Grows a topic to the requested partition count (with an optional manual
// assignment of the new partitions); validate_only checks without changing.

func init() { register(37, 0, 3, handleCreatePartitions) }

func handleCreatePartitions(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	changed := false
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		code, msg := b.createPartitions(&rt, seen[rt.Topic] > 1, req.ValidateOnly)
		if code == 0 && !req.ValidateOnly {
			changed = true
		}
		st.ErrorCode = code
		if msg != "" {
			st.ErrorMessage = &msg
		}
		resp.Topics = append(resp.Topics, st)
	}
	if changed {
		if err := b.reconcile(); err != nil {
			b.logger.Error("open new partitions", "err", err)
		}
	}
	return done(resp)
}

func (b *Broker) createPartitions(rt *kmsg.CreatePartitionsRequestTopic, dup, validateOnly bool) (int16, string) {
	if dup {
		return kerr.InvalidRequest.Code, "Duplicate topic in request."
	}
	t, ok := b.meta.Topic(rt.Topic)
	if !ok {
		return kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("The topic '%s' does not exist.", rt.Topic)
	}
	have := int32(len(t.Partitions))
	if rt.Count < have {
		return kerr.InvalidPartitions.Code, fmt.Sprintf("Topic currently has %d partitions, which is higher than the requested %d.", have, rt.Count)
	}
	if rt.Count == have {
		return kerr.InvalidPartitions.Code, fmt.Sprintf("Topic already has %d partitions.", have)
	}
	if rt.Count-have > maxPartitionsPerRequest {
		return kerr.PolicyViolation.Code, fmt.Sprintf("Excessively large number of partitions per request: at most %d.", maxPartitionsPerRequest)
	}
	if rt.Assignment != nil {
		if int32(len(rt.Assignment)) != rt.Count-have {
			return kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("Increasing the number of partitions by %d but %d assignments provided.", rt.Count-have, len(rt.Assignment))
		}
		for _, a := range rt.Assignment {
			if msg := b.checkReplicas(a.Replicas); msg != "" {
				return kerr.InvalidReplicaAssignment.Code, msg
			}
		}
	}
	if validateOnly {
		return 0, ""
	}
	var manual [][]int32
	for _, a := range rt.Assignment {
		manual = append(manual, a.Replicas)
	}
	if err := b.meta.CreatePartitions(rt.Topic, rt.Count, b.placementBrokers(), manual); err != nil {
		return kerr.InvalidPartitions.Code, err.Error()
	}
	return 0, ""
}
