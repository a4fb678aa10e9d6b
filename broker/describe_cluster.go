package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeCluster: v0-1
//
// The cluster id, the controller and the brokers. v1 asks for an endpoint
// type: brokers (1) are answered; controllers (2) get UNSUPPORTED_ENDPOINT_TYPE
// as from a broker listener in Kafka.

func init() { register(60, 0, 1, handleDescribeCluster) }

func handleDescribeCluster(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterAuthorizedOperations = authorizedOpsOmitted
	if r.version >= 1 {
		resp.EndpointType = req.EndpointType
		if req.EndpointType != 1 {
			resp.ErrorCode = kerr.UnsupportedEndpointType.Code
			return done(resp)
		}
	}
	resp.ClusterID = b.meta.ClusterID()
	resp.ControllerID = b.controllerID()
	for _, mb := range b.brokerList() {
		db := kmsg.NewDescribeClusterResponseBroker()
		db.NodeID, db.Host, db.Port, db.Rack = mb.NodeID, mb.Host, mb.Port, mb.Rack
		resp.Brokers = append(resp.Brokers, db)
	}
	return done(resp)
}
