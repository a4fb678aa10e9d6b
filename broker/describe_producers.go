package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeProducers: v0
//
// The producers each partition tracks: id, epoch, last sequence, the broker
// time of their last append (Kafka reports the batch timestamp) and the
// first offset of their open transaction, which is what
// kafka-transactions.sh find-hanging looks for. The coordinator epoch of
// markers is not tracked (-1).

func init() { register(61, 0, 0, handleDescribeProducers) }

func handleDescribeProducers(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.DescribeProducersRequest)
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		for _, idx := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = idx
			p, code := b.leaderPartition(rt.Topic, idx)
			if p == nil {
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			for _, ps := range p.log.Producers() {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID, ap.ProducerEpoch, ap.LastSequence = ps.ProducerID, int32(ps.Epoch), ps.LastSequence
				ap.LastTimestamp, ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = ps.LastSeenMs, -1, ps.TxnFirst
				sp.ActiveProducers = append(sp.ActiveProducers, ap)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return done(resp)
}
