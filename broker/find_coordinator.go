package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator: v0-4
//
// There is no group or transaction coordinator yet (the consumer-group
// issue brings one), so every key is answered COORDINATOR_NOT_AVAILABLE, the
// retriable error Kafka gives while __consumer_offsets is not ready.
// Registering the API matters already: librdkafka (kcat) enables LZ4 only
// against brokers that advertise FindCoordinator v0 (rdkafka_feature.c).

func init() { register(10, 0, 4, handleFindCoordinator) }

func handleFindCoordinator(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	msg := "the group and transaction coordinators are not available in this release"
	resp.NodeID = -1
	if r.version < 4 {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		resp.ErrorMessage = &msg
		return done(resp)
	}
	for _, key := range req.CoordinatorKeys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID = key, -1
		c.ErrorCode = kerr.CoordinatorNotAvailable.Code
		c.ErrorMessage = &msg
		resp.Coordinators = append(resp.Coordinators, c)
	}
	return done(resp)
}
