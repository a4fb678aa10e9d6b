package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator: v0-6
//
// Group keys (type 0) and transactional ids (type 1) are answered with the
// current leader of the key's partition of __consumer_offsets or
// __transaction_state (created on the first request), by the metadata:
// this broker on a standalone node, COORDINATOR_NOT_AVAILABLE while the
// partition has no leader. v4 batches keys; other types (v6's share
// groups among them) are INVALID_REQUEST. Registering the API matters on its
// own too: librdkafka (kcat) enables LZ4 only against brokers that
// advertise FindCoordinator v0 (rdkafka_feature.c).

func init() { register(10, 0, 6, handleFindCoordinator) }

func handleFindCoordinator(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if r.version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	for _, key := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID = key, -1
		var msg string
		switch {
		case req.CoordinatorType != 0 && req.CoordinatorType != 1:
			c.ErrorCode = kerr.InvalidRequest.Code
			msg = "unknown coordinator type"
		case key == "":
			c.ErrorCode = kerr.InvalidRequest.Code
			msg = "the key is empty"
		case req.CoordinatorType == 0 && !b.offsetsTopicReady():
			c.ErrorCode = kerr.CoordinatorNotAvailable.Code
			msg = "__consumer_offsets is not available yet"
		case req.CoordinatorType == 1 && !b.txnTopicReady():
			c.ErrorCode = kerr.CoordinatorNotAvailable.Code
			msg = "__transaction_state is not available yet"
		default:
			ct := &b.offsetsCT
			if req.CoordinatorType == 1 {
				ct = &b.txnCT
			}
			c.NodeID, c.Host, c.Port, msg = b.coordinatorOf(ct, key)
			if c.NodeID < 0 {
				c.ErrorCode = kerr.CoordinatorNotAvailable.Code
			}
		}
		if msg != "" {
			c.ErrorMessage = &msg
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	if r.version < 4 {
		c := resp.Coordinators[0]
		resp.Coordinators = nil
		resp.ErrorCode, resp.ErrorMessage = c.ErrorCode, c.ErrorMessage
		resp.NodeID, resp.Host, resp.Port = c.NodeID, c.Host, c.Port
	}
	return done(resp)
}

// coordinatorOf is the broker leading the key's partition of ct, or -1
// with the reason.
func (b *Broker) coordinatorOf(ct *coordinatorTopic, key string) (int32, string, int32, string) {
	if !b.replicated() {
		return b.cfg.NodeID, b.advHost, b.advPort, ""
	}
	mt, ok := b.meta.Topic(ct.name)
	if !ok || len(mt.Partitions) == 0 {
		return -1, "", 0, ct.name + " does not exist yet"
	}
	k := groupPartition(key, len(mt.Partitions))
	leader := mt.Partitions[k].Leader
	if leader < 0 {
		return -1, "", 0, fmt.Sprintf("%s-%d has no leader", ct.name, k)
	}
	for _, br := range b.meta.Brokers() {
		if br.ID == leader {
			return br.ID, br.Host, br.Port, ""
		}
	}
	return -1, "", 0, fmt.Sprintf("the leader of %s-%d, broker %d, is not registered", ct.name, k, leader)
}
