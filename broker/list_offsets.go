package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets: v1-8
//
// Timestamps -1 (latest: the high watermark, or the last stable offset for
// read_committed), -2 (earliest: the log start offset), -3 (v7+: the record
// with the largest timestamp), -4 (v8+: earliest local, the same as -2 here)
// and any real timestamp (the first record at or after it, looked up through
// the time index and inside the batch). v4+ checks the client's leader epoch
// and returns the partition's.

func init() { register(2, 1, 8, handleListOffsets) }

const (
	tsLatest        = -1
	tsEarliest      = -2
	tsMaxTimestamp  = -3
	tsEarliestLocal = -4
)

func handleListOffsets(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Offset, sp.Timestamp = -1, -1
			sp.ErrorCode = b.listOffset(r.version, req.IsolationLevel == 1, rt.Topic, &rp, &sp)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return done(resp)
}

func (b *Broker) listOffset(version int16, committed bool, topicName string, rp *kmsg.ListOffsetsRequestTopicPartition, sp *kmsg.ListOffsetsResponseTopicPartition) int16 {
	p, code := b.leaderPartition(topicName, rp.Partition)
	if p == nil {
		return code
	}
	if code := checkLeaderEpoch(p, rp.CurrentLeaderEpoch); code != 0 {
		return code
	}
	sp.LeaderEpoch = p.epoch.Load()
	upper := p.highWatermark()
	if committed {
		upper = p.log.LastStableOffset()
	}
	switch ts := rp.Timestamp; {
	case ts == tsLatest:
		sp.Offset = upper
	case ts == tsEarliest || (ts == tsEarliestLocal && version >= 8):
		sp.Offset = p.log.StartOffset()
	case ts == tsMaxTimestamp && version >= 7:
		off, mts, err := p.log.MaxTimestamp()
		if err != nil {
			b.logger.Error("max timestamp lookup", "topic", topicName, "partition", rp.Partition, "err", err)
			return kerr.KafkaStorageError.Code
		}
		sp.Offset, sp.Timestamp = off, mts
	case ts >= 0:
		off, rts, ok, err := p.log.OffsetForTimestamp(ts)
		if err != nil {
			b.logger.Error("timestamp lookup", "topic", topicName, "partition", rp.Partition, "err", err)
			return kerr.KafkaStorageError.Code
		}
		if ok && off < upper {
			sp.Offset, sp.Timestamp = off, rts
		}
	default:
		return kerr.InvalidRequest.Code
	}
	return 0
}
