package broker

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker/commitlog"
)

// Produce: v0-11 advertised, v3-11 served
//
// Min version 0 is advertised because librdkafka before 2.11.1 turns
// compression off against brokers that do not (KAFKA-NOTES.md); v0-2
// requests (message formats 0 and 1) are answered UNSUPPORTED_VERSION, as
// Kafka 4 does. Batches are validated (lengths, magic 2, CRC-32C, size
// against max.message.bytes, timestamps) and stored as produced. acks=all is
// answered once the batches are fsynced, group-committed with every other
// producer and partition waiting at the same time; acks=1 after the append;
// acks=0 gets no response. Compacted topics refuse records without keys.
//
// A topic whose compression.type names a codec gets its batches recompressed
// to it, as Kafka does; "producer" (the default) stores them as they came.
//
// Batches of idempotent producers (producer id >= 0) are checked against
// the producer's state in the partition, atomically with the append
// (commitlog/producers.go): a retried batch already stored is answered with
// its original base offset and not written again; a sequence gap, or a new
// epoch not starting at sequence 0, gets OUT_OF_ORDER_SEQUENCE_NUMBER; an
// epoch below the producer's INVALID_PRODUCER_EPOCH. A producer id without
// a sequence or an epoch is INVALID_RECORD.
//
// Transactional batches are accepted only while the producer's transaction
// is ongoing and holds the partition (KIP-890 part 1, checked with the
// transaction coordinator): a delayed write of an ended transaction gets
// INVALID_TXN_STATE instead of landing in the next one, an older epoch
// INVALID_PRODUCER_EPOCH.

func init() { register(0, 0, 11, handleProduce) }

func handleProduce(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	type pending struct {
		sp   *kmsg.ProduceResponseTopicPartition
		done <-chan error
		repl *replicaWait // acks=all on a replicated partition
	}
	var waits []pending
	now := time.Now().UnixMilli()
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			sp.Default()
			sp.Partition = rp.Partition
			var code int16
			switch {
			case r.version < 3:
				code = kerr.UnsupportedVersion.Code
			case req.Acks != -1 && req.Acks != 0 && req.Acks != 1:
				code = kerr.InvalidRequiredAcks.Code
			default:
				res := b.produceTo(rt.Topic, rp.Partition, rp.Records, now, req.Acks == -1, req.TransactionID, sp)
				code = res.code
				if code == 0 && (req.Acks == -1 || res.sync) {
					w := pending{sp: sp, done: b.flusher.Sync(res.p.log, res.end)}
					if req.Acks == -1 && !res.role.alone() {
						w.repl = &replicaWait{p: res.p, role: res.role, end: res.end}
					}
					waits = append(waits, w)
				}
			}
			if code != 0 {
				sp.ErrorCode = code
				sp.BaseOffset = -1
				b.metrics.produceErrors.WithLabelValues(kerr.ErrorForCode(code).Error()).Inc()
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Acks == 0 {
		for _, st := range resp.Topics {
			for _, sp := range st.Partitions {
				if sp.ErrorCode != 0 {
					// The producer hears of nothing else: Kafka closes the
					// connection so that it refreshes its metadata.
					return nil, fmt.Errorf("acks=0 produce to %s/%d failed: %v", st.Topic, sp.Partition, kerr.ErrorForCode(sp.ErrorCode))
				}
			}
		}
		return &reply{none: true}, nil
	}
	if len(waits) == 0 {
		return done(resp)
	}
	deadline := time.Now().Add(time.Duration(req.TimeoutMillis) * time.Millisecond)
	return &reply{resp: resp, ready: func() {
		for _, w := range waits {
			if err := <-w.done; err != nil {
				b.logger.Error("fsync failed", "err", err)
				w.sp.ErrorCode = kerr.KafkaStorageError.Code
				continue
			}
			if w.repl != nil {
				w.sp.ErrorCode = w.repl.wait(b, deadline)
			}
		}
	}}, nil
}

// produced is the outcome of appending one partition's records.
type produced struct {
	p    *partition
	role *role // the leadership the records were appended under
	end  int64 // offset after the last appended record
	code int16
	sync bool // flush.messages asks for an fsync before answering
}

// produceTo validates and appends one partition's record set.
func (b *Broker) produceTo(topicName string, idx int32, records []byte, now int64, acksAll bool, txnID *string, sp *kmsg.ProduceResponseTopicPartition) produced {
	p := b.partition(topicName, idx)
	if p == nil {
		return produced{code: b.missingPartition(topicName, idx)}
	}
	res := produced{p: p}
	if p.t.internal {
		// __consumer_offsets and friends are written by their coordinators
		// only, as in Kafka.
		res.code = kerr.InvalidTopicException.Code
		return res
	}
	s := p.t.settings.Load()
	h, code := validateBatch(records, s, now)
	if code != 0 {
		res.code = code
		return res
	}
	var guard txnGuard
	if h.IsTransactional() && b.remoteTxn(h.ProducerID, txnID) {
		// Coordinated on another broker: verified there first (txn_verify.go),
		// then appended under the partition's verification lock, which the
		// transaction's marker also takes (lock order: verified.mu, roleMu).
		if guard, res.code = b.verifyTxnWrite(p, *txnID, h.ProducerID, h.ProducerEpoch); res.code != 0 {
			return res
		}
		p.verified.mu.Lock()
		defer p.verified.mu.Unlock()
		if !p.verified.valid(guard) {
			res.code = kerr.InvalidTxnState.Code
			return res
		}
	}
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	r := p.role.Load()
	switch {
	case !r.leads():
		res.code = kerr.NotLeaderForPartition.Code
		return res
	case acksAll && len(r.isr) < s.minInsync:
		res.code = kerr.NotEnoughReplicas.Code
		return res
	}
	res.role = r
	res.code, res.sync = b.appendProduced(p, s, h, records, now, guard.remote, sp)
	res.end = sp.BaseOffset + int64(h.NumRecords)
	return res
}

// appendProduced appends one validated batch to the partition this broker
// leads, under its role lock.
func (b *Broker) appendProduced(p *partition, s *topicSettings, h commitlog.Header, records []byte, now int64, verified bool, sp *kmsg.ProduceResponseTopicPartition) (code int16, sync bool) {
	topicName, idx := p.t.name, p.index
	if s.codec >= 0 && h.Compression() != s.codec {
		out, err := commitlog.Recompress(records, s.codec)
		if err != nil {
			return kerr.CorruptMessage.Code, false
		}
		records = out
		h, _ = commitlog.ParseHeader(records)
		if h.Size() > s.maxMessageBytes {
			return kerr.MessageTooLarge.Code, false // as Kafka checks after recompressing
		}
	}
	if s.logAppendTime {
		commitlog.SetLogAppendTime(records, now)
	}
	batches := []commitlog.Batch{{Data: records, Header: h}}
	n := int64(h.NumRecords)
	var base int64
	var err error
	if h.IsTransactional() && !verified {
		// Only into a transaction that holds this partition now (KIP-890
		// part 1), checked and appended under the coordinator's lock.
		code := b.txns.AppendVerified(h.ProducerID, h.ProducerEpoch, topicName, idx, func() int16 {
			base, err = p.log.Append(batches, p.role.Load().epoch)
			return 0
		})
		if code != 0 {
			return code, false
		}
	} else {
		base, err = p.log.Append(batches, p.role.Load().epoch)
	}
	switch {
	case errors.Is(err, commitlog.ErrDuplicateBatch):
		// Written by an earlier try; acks=all still waits for it to be durable.
		b.logger.Debug("duplicate producer batch", "topic", topicName, "partition", idx, "offset", base,
			"producer_id", h.ProducerID, "producer_epoch", h.ProducerEpoch, "sequence", h.BaseSequence)
		sp.BaseOffset = base
		sp.LogStartOffset = p.log.StartOffset()
		return 0, false
	case errors.Is(err, commitlog.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code, false
	case errors.Is(err, commitlog.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code, false
	case errors.Is(err, commitlog.ErrClosed):
		return kerr.UnknownTopicOrPartition.Code, false // deleted meanwhile
	}
	if err != nil {
		b.logger.Error("append failed", "topic", topicName, "partition", idx, "err", err)
		return kerr.KafkaStorageError.Code, false
	}
	p.notify()
	b.metrics.messagesIn.Add(float64(n))
	b.metrics.bytesIn.Add(float64(len(records)))
	sp.BaseOffset = base
	sp.LogStartOffset = p.log.StartOffset()
	if s.logAppendTime {
		sp.LogAppendTime = now
	}
	return 0, p.log.UnsyncedRecords() >= s.flushMessages
}

// timestampOK applies message.timestamp.before.max.ms and
// message.timestamp.after.max.ms to a CreateTime batch.
func (s *topicSettings) timestampOK(h *commitlog.Header, now int64) bool {
	tooOld := s.beforeMaxMs < now && h.BaseTimestamp < now-s.beforeMaxMs
	tooNew := s.afterMaxMs < math.MaxInt64-now && h.MaxTimestamp > now+s.afterMaxMs
	return !tooOld && !tooNew
}

// requireKeys rejects records without a key on compacted topics, as Kafka
// does: compaction could never remove them. This is the one place produce
// looks inside (and so decompresses) a batch.
func requireKeys(batch []byte) int16 {
	recs, err := commitlog.DecodeRecords(batch)
	if err != nil {
		return kerr.CorruptMessage.Code
	}
	for _, r := range recs {
		if r.Key == nil {
			return kerr.InvalidRecord.Code
		}
	}
	return 0
}

// validateBatch checks a partition's records field. From Produce v3 on it
// must hold exactly one record batch of magic 2 (Kafka's validateRecords):
// anything else is INVALID_RECORD, a CRC mismatch CORRUPT_MESSAGE.
func validateBatch(records []byte, s *topicSettings, now int64) (commitlog.Header, int16) {
	h, err := commitlog.ParseHeader(records)
	if err != nil || h.Size() != int64(len(records)) {
		return h, kerr.InvalidRecord.Code
	}
	if h.Size() > s.maxMessageBytes {
		return h, kerr.MessageTooLarge.Code
	}
	if _, err := commitlog.Validate(records); err != nil {
		return h, kerr.CorruptMessage.Code
	}
	switch {
	case h.IsControl(), h.NumRecords == 0, int64(h.LastOffsetDelta)+1 != int64(h.NumRecords):
		return h, kerr.InvalidRecord.Code
	case h.IsTransactional() && h.ProducerID < 0:
		return h, kerr.InvalidRecord.Code // a transaction needs a producer
	case h.ProducerID >= 0 && (h.BaseSequence < 0 || h.ProducerEpoch < 0):
		return h, kerr.InvalidRecord.Code // Kafka's "invalid sequence number" check
	case !s.logAppendTime && !s.timestampOK(&h, now):
		return h, kerr.InvalidTimestamp.Code
	}
	if s.compact {
		return h, requireKeys(records)
	}
	return h, 0
}
