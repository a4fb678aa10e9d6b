package broker

import (
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker/commitlog"
)

// Fetch: v4-12
//
// Serves whole batches straight from segment files with sendfile (see
// sendfile.go), up to the high watermark, honouring max_bytes and the
// per-partition limits (the first batch is always served whole, KIP-74).
// When fewer than min_bytes are available the request long-polls up to
// max_wait_ms and is woken by appends. read_committed stops at the last
// stable offset (the first offset of the oldest open transaction) and lists
// the aborted transactions overlapping the answer, whose records the
// client drops.
//
// Followers fetch with their replica id (replica_fetcher.go): they read up
// to the log end offset, their fetch offset advances the high watermark
// (replica.go), and a last fetched epoch the leader's log disagrees with is
// answered with the diverging epoch and no records. A replica that is not
// the leader answers NOT_LEADER_OR_FOLLOWER.
//
// Not yet: fetch sessions (KIP-227; every answer has session id 0, so
// clients send full requests), preferred read replicas (KIP-392).

func init() { register(1, 4, 12, handleFetch) }

func handleFetch(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.FetchRequest)
	rep := &reply{}
	resp, files, n, final := b.fetchOnce(r, req)
	rep.resp, rep.files = resp, files
	if final || n >= int64(req.MinBytes) || req.MaxWaitMillis <= 0 {
		return rep, nil
	}
	rep.ready = func() { b.longPoll(r, req, rep) }
	return rep, nil
}

// longPoll waits until min_bytes are available, max_wait_ms passes or the
// broker closes, then fills rep with the final answer.
func (b *Broker) longPoll(r *request, req *kmsg.FetchRequest, rep *reply) {
	wake := make(chan struct{}, 1)
	var watched []*partition
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			if p := b.partition(rt.Topic, rp.Partition); p != nil {
				p.watch(wake, true)
				watched = append(watched, p)
			}
		}
	}
	defer func() {
		for _, p := range watched {
			p.watch(wake, false)
		}
	}()
	timer := time.NewTimer(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	defer timer.Stop()
	for {
		resp, files, n, final := b.fetchOnce(r, req)
		rep.resp, rep.files = resp, files
		if final || n >= int64(req.MinBytes) {
			return
		}
		select {
		case <-wake:
		case <-timer.C:
			rep.resp, rep.files, _, _ = b.fetchOnce(r, req)
			return
		case <-b.closing:
			return
		}
	}
}

// fetchOnce builds a fetch response from what is available now. n counts
// record bytes; final reports an error that makes waiting pointless.
func (b *Broker) fetchOnce(r *request, req *kmsg.FetchRequest) (resp *kmsg.FetchResponse, files []fileRange, n int64, final bool) {
	resp = req.ResponseKind().(*kmsg.FetchResponse)
	resp.SetVersion(r.version)
	remaining := int64(req.MaxBytes)
	if r.version < 3 || remaining <= 0 {
		remaining = 1<<31 - 1
	}
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			sp.Default()
			sp.Partition = rp.Partition
			if req.IsolationLevel == 1 {
				sp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
			}
			slice, code := b.fetchPartition(rt.Topic, req, &rp, sp, min(int64(rp.PartitionMaxBytes), remaining), n == 0)
			sp.ErrorCode = code
			if code != 0 || sp.DivergingEpoch.EndOffset >= 0 {
				final = true // the client must act (or truncate) before data can come
			}
			if slice.Size == 0 {
				sp.RecordBatches = []byte{}
				continue
			}
			marker := r.conn.markers.next()
			sp.RecordBatches = marker
			files = append(files, fileRange{marker: marker, file: slice.File, pos: slice.Pos, size: slice.Size})
			n += slice.Size
			remaining -= slice.Size
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, files, n, final
}

// fetchPartition reads one partition; it fills the offsets of sp and
// returns the slice to send and the partition's error code.
func (b *Broker) fetchPartition(topicName string, req *kmsg.FetchRequest, rp *kmsg.FetchRequestTopicPartition, sp *kmsg.FetchResponseTopicPartition, limit int64, first bool) (commitlog.Slice, int16) {
	p, code := b.leaderPartition(topicName, rp.Partition)
	if p == nil {
		return commitlog.Slice{}, code
	}
	r := p.role.Load()
	if code := checkLeaderEpoch(p, rp.CurrentLeaderEpoch); code != 0 {
		return commitlog.Slice{}, code
	}
	hw := p.highWatermark()
	lso := min(p.log.LastStableOffset(), hw) // an append between the two reads must not lift it above hw
	start, leo := p.log.Offsets()
	sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = hw, lso, start
	upper := hw
	if req.ReplicaID >= 0 {
		// A follower: it reads up to the log end, and its fetch offset
		// says what it holds.
		if rp.LastFetchedEpoch >= 0 {
			if ep, end := p.log.EndOffsetForEpoch(rp.LastFetchedEpoch); ep < rp.LastFetchedEpoch || end < rp.FetchOffset {
				sp.DivergingEpoch.Epoch, sp.DivergingEpoch.EndOffset = ep, end
				return commitlog.Slice{}, 0
			}
		}
		if rp.FetchOffset <= leo && p.followerFetched(r, req.ReplicaID, rp.FetchOffset, leo, time.Now()) {
			b.expandISR(p, r, req.ReplicaID)
		}
		sp.HighWatermark = p.highWatermark()
		upper = leo
	} else if req.IsolationLevel == 1 {
		upper = lso // read_committed: nothing of an open transaction
	}
	if limit <= 0 && !first {
		return commitlog.Slice{}, 0
	}
	slice, err := p.log.Read(rp.FetchOffset, upper, max(limit, 0), first)
	switch {
	case errors.Is(err, commitlog.ErrOffsetOutOfRange):
		return commitlog.Slice{}, kerr.OffsetOutOfRange.Code
	case errors.Is(err, commitlog.ErrClosed):
		return commitlog.Slice{}, kerr.UnknownTopicOrPartition.Code // deleted meanwhile
	case err != nil:
		b.logger.Error("fetch read failed", "topic", topicName, "partition", rp.Partition, "offset", rp.FetchOffset, "err", err)
		return commitlog.Slice{}, kerr.KafkaStorageError.Code
	}
	if req.IsolationLevel == 1 && slice.Size > 0 {
		for _, a := range p.log.AbortedTransactions(rp.FetchOffset, upper) {
			sp.AbortedTransactions = append(sp.AbortedTransactions, kmsg.FetchResponseTopicPartitionAbortedTransaction{ProducerID: a.ProducerID, FirstOffset: a.FirstOffset})
		}
	}
	return slice, 0
}

// leaderPartition is a partition this broker leads, or the error code for
// one it does not: NOT_LEADER_OR_FOLLOWER when the partition exists
// elsewhere or here as a follower, UNKNOWN_TOPIC_OR_PARTITION otherwise.
func (b *Broker) leaderPartition(topic string, idx int32) (*partition, int16) {
	p := b.partition(topic, idx)
	if p == nil {
		return nil, b.missingPartition(topic, idx)
	}
	if !p.role.Load().leads() {
		return nil, kerr.NotLeaderForPartition.Code
	}
	return p, 0
}

// missingPartition is the error for a partition with no local replica: a
// partition of a known topic lives on other brokers.
func (b *Broker) missingPartition(topic string, idx int32) int16 {
	if n := b.partitionsOf(topic); idx >= 0 && idx < n {
		return kerr.NotLeaderForPartition.Code
	}
	return kerr.UnknownTopicOrPartition.Code
}

// checkLeaderEpoch compares a client's current leader epoch (KIP-320; -1
// means unknown) with the partition's.
func checkLeaderEpoch(p *partition, clientEpoch int32) int16 {
	epoch := p.epoch.Load()
	switch {
	case clientEpoch < 0 || clientEpoch == epoch:
		return 0
	case clientEpoch < epoch:
		return kerr.FencedLeaderEpoch.Code
	default:
		return kerr.UnknownLeaderEpoch.Code
	}
}
