package broker

import (
	"errors"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// WriteTxnMarkers: v0-1
//
// A transaction coordinator on another broker hands this broker the
// markers of the partitions it leads (txn_markers.go is the sender). Each
// marker is appended to each partition this broker leads
// (NOT_LEADER_OR_FOLLOWER otherwise, UNKNOWN_TOPIC_OR_PARTITION for one it
// does not have), and answered once fsynced and replicated over the ISR;
// in a __consumer_offsets partition it also completes the transaction's
// offset commits. The coordinator epoch is not checked: a marker of an
// ended transaction written twice is harmless, as after a coordinator's
// restart.

func init() { register(27, 0, 1, handleWriteTxnMarkers) }

func handleWriteTxnMarkers(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.WriteTxnMarkersRequest)
	resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	var wg sync.WaitGroup
	for _, rm := range req.Markers {
		sm := kmsg.NewWriteTxnMarkersResponseMarker()
		sm.ProducerID = rm.ProducerID
		for _, rt := range rm.Topics {
			st := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			st.Topic = rt.Topic
			st.Partitions = make([]kmsg.WriteTxnMarkersResponseMarkerTopicPartition, len(rt.Partitions))
			for i, idx := range rt.Partitions {
				sp := &st.Partitions[i]
				*sp = kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				sp.Partition = idx
				p := b.partition(rt.Topic, idx)
				switch {
				case p == nil:
					sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				case !p.role.Load().leads():
					sp.ErrorCode = kerr.NotLeaderForPartition.Code
				default:
					wg.Add(1)
					go func() {
						defer wg.Done()
						if err := b.writeMarker(p, rm.ProducerID, rm.ProducerEpoch, rm.Committed); err != nil {
							b.logger.Warn("write transaction marker", "topic", p.t.name, "partition", p.index, "producer_id", rm.ProducerID, "err", err)
							sp.ErrorCode = markerErrorCode(err)
						}
					}()
				}
			}
			sm.Topics = append(sm.Topics, st)
		}
		resp.Markers = append(resp.Markers, sm)
	}
	return &reply{resp: resp, ready: wg.Wait}, nil
}

// markerErrorCode is the Kafka error of a failed marker write.
func markerErrorCode(err error) int16 {
	var ke *kerr.Error
	switch {
	case errors.Is(err, errNotLeader):
		return kerr.NotLeaderForPartition.Code
	case errors.As(err, &ke):
		return ke.Code
	}
	return kerr.KafkaStorageError.Code
}
