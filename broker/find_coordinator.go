package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator: v0-4
//
// Group keys (type 0) and transactional ids (type 1) are answered with
// this broker, the leader of every partition of __consumer_offsets and
// __transaction_state, which are created on the first request. v4 batches
// keys; other types are INVALID_REQUEST. Registering the API matters on its
// own too: librdkafka (kcat) enables LZ4 only against brokers that
// advertise FindCoordinator v0 (rdkafka_feature.c).

func init() { register(10, 0, 4, handleFindCoordinator) }

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
			c.NodeID, c.Host, c.Port = b.cfg.NodeID, b.advHost, b.advPort
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
