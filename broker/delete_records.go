package broker

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker/commitlog"
)

// DeleteRecords: v0-2
//
// Moves each partition's log start offset forward to the requested offset
// (-1 means the high watermark), deleting whole segments below it; the new
// start is checkpointed so it survives restarts. An offset past the high
// watermark is OFFSET_OUT_OF_RANGE.

func init() { register(21, 0, 2, handleDeleteRecords) }

func handleDeleteRecords(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	moved := false
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition, sp.LowWatermark = rp.Partition, -1
			p, code := b.leaderPartition(rt.Topic, rp.Partition)
			switch {
			case p == nil:
				sp.ErrorCode = code
			default:
				hw := p.highWatermark()
				off := rp.Offset
				if off == -1 {
					off = hw
				}
				start, err := p.log.DeleteRecordsBefore(off, hw)
				switch {
				case errors.Is(err, commitlog.ErrOffsetOutOfRange):
					sp.ErrorCode = kerr.OffsetOutOfRange.Code
				case err != nil:
					b.logger.Error("delete records", "topic", rt.Topic, "partition", rp.Partition, "err", err)
					sp.ErrorCode = kerr.KafkaStorageError.Code
				default:
					sp.LowWatermark = start
					moved = true
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if moved {
		if err := b.writeCheckpoints(); err != nil {
			b.logger.Error("checkpoint after delete records", "err", err)
		}
	}
	return done(resp)
}
