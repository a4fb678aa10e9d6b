package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transaction markers. Ending a transaction writes a commit or abort
// marker into each of its partitions: this broker appends those it leads
// itself and sends WriteTxnMarkers (write_txn_markers.go) to the leaders
// of the others, as Kafka's coordinator does. A marker is answered once it
// is fsynced here and replicated over the partition's ISR. Partitions that
// fail are retried for markerRetryFor; after that the transaction stays
// prepared and the coordinator's background check tries again (as after a
// restart), until every marker has landed.

const (
	markerRetryFor     = 15 * time.Second // one WriteMarkers call, retries included
	markerBackoff      = 200 * time.Millisecond
	markerRemoteExtra  = 5 * time.Second // beyond the leader's own replication wait
	markerClientPrefix = "sluice-txn-markers-"
)

// txnMarkers writes markers for the transaction coordinator, keeping one
// Kafka client per remote leader address.
type txnMarkers struct {
	b       *Broker
	clients *peerClients
}

func newTxnMarkers(b *Broker) *txnMarkers {
	return &txnMarkers{b: b, clients: newPeerClients(markerClientPrefix + strconv.Itoa(int(b.cfg.NodeID)))}
}

// markerTP is one partition a marker goes to.
type markerTP struct {
	topic string
	idx   int32
}

// WriteMarkers appends the marker to every partition of the transaction
// and returns once all are durable, retrying those that fail for a while.
// Partitions of topics deleted meanwhile are skipped.
func (m *txnMarkers) WriteMarkers(pid int64, epoch int16, commit bool, parts map[string][]int32) error {
	var todo []markerTP
	for topic, ps := range parts {
		for _, idx := range ps {
			todo = append(todo, markerTP{topic, idx})
		}
	}
	deadline := time.Now().Add(markerRetryFor)
	for attempt := 1; ; attempt++ {
		var err error
		todo, err = m.writeOnce(pid, epoch, commit, todo, deadline)
		if len(todo) == 0 {
			return nil
		}
		m.b.logger.Debug("transaction markers retry", "producer_id", pid, "attempt", attempt, "left", len(todo), "err", err)
		if time.Now().Add(markerBackoff).After(deadline) {
			return fmt.Errorf("%d partitions left after %d attempts: %w", len(todo), attempt, err)
		}
		select {
		case <-m.b.closing:
			return fmt.Errorf("broker shutting down: %w", err)
		case <-time.After(markerBackoff):
		}
	}
}

// writeOnce sends the marker to each partition's current leader once and
// returns the partitions still to do, with the first error.
func (m *txnMarkers) writeOnce(pid int64, epoch int16, commit bool, todo []markerTP, deadline time.Time) ([]markerTP, error) {
	b := m.b
	var (
		mu    sync.Mutex
		left  []markerTP
		first error
		wg    sync.WaitGroup
	)
	fail := func(tp markerTP, err error) {
		mu.Lock()
		defer mu.Unlock()
		left = append(left, tp)
		if first == nil {
			first = err
		}
	}
	remote := map[int32][]markerTP{}
	for _, tp := range todo {
		leader, ok := b.markerLeader(tp)
		switch {
		case !ok:
			continue // deleted: nothing left to mark
		case leader < 0:
			fail(tp, fmt.Errorf("%s-%d has no leader", tp.topic, tp.idx))
		case leader == b.cfg.NodeID:
			p := b.partition(tp.topic, tp.idx)
			if p == nil {
				fail(tp, fmt.Errorf("%s-%d is not open", tp.topic, tp.idx))
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := b.writeMarker(p, pid, epoch, commit); err != nil {
					fail(tp, err)
				}
			}()
		default:
			remote[leader] = append(remote[leader], tp)
		}
	}
	for leader, tps := range remote {
		wg.Add(1)
		go func() {
			defer wg.Done()
			failed, err := m.sendRemote(leader, pid, epoch, commit, tps, deadline)
			for _, tp := range failed {
				fail(tp, err)
			}
		}()
	}
	wg.Wait()
	return left, first
}

// markerLeader is the leader of a marker's partition by the metadata (this
// broker for every partition of a standalone node); ok is false when the
// partition no longer exists.
func (b *Broker) markerLeader(tp markerTP) (int32, bool) {
	if !b.replicated() {
		return b.cfg.NodeID, b.partitionsOf(tp.topic) > tp.idx
	}
	mt, ok := b.meta.Topic(tp.topic)
	if !ok || int(tp.idx) >= len(mt.Partitions) {
		return -1, false
	}
	return mt.Partitions[tp.idx].Leader, true
}

// writeMarker appends a marker to p, which this broker must lead, waits
// until it is durable and replicated, and for a __consumer_offsets
// partition completes the transaction's offset commits of its groups.
func (b *Broker) writeMarker(p *partition, pid int64, epoch int16, commit bool) error {
	var s *groupShard
	if p.t.name == offsetsTopic && b.groups != nil {
		if s = b.groups.shard(p.index); s != nil {
			s.loadMu.Lock() // a load in progress sees the marker in the log
			defer s.loadMu.Unlock()
		}
	}
	data := markerBatch(pid, epoch, commit, 0, time.Now().UnixMilli())
	// Writes verified for the ended transaction must not follow the marker
	// (txn_verify.go).
	p.verified.mu.Lock()
	written := b.coordinatorAppend(p, -1, data, false)
	p.verified.markerWritten(pid)
	p.verified.mu.Unlock()
	if err := <-written; err != nil {
		return err
	}
	if s != nil {
		n := b.partitionCount(&b.offsetsCT)
		s.c.CompleteTxn(pid, commit, func(id string) bool { return groupPartition(id, n) == int(p.index) })
	}
	return nil
}

// sendRemote sends one WriteTxnMarkers request for tps to broker leader
// and returns the partitions it did not write.
func (m *txnMarkers) sendRemote(leader int32, pid int64, epoch int16, commit bool, tps []markerTP, deadline time.Time) ([]markerTP, error) {
	addr := m.b.brokerAddr(leader)
	if addr == "" {
		return tps, fmt.Errorf("broker %d is not registered", leader)
	}
	cl, err := m.clients.get(addr)
	if err != nil {
		return tps, err
	}
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	mk := kmsg.NewWriteTxnMarkersRequestMarker()
	mk.ProducerID, mk.ProducerEpoch, mk.Committed = pid, epoch, commit
	byTopic := map[string]int{}
	for _, tp := range tps {
		i, ok := byTopic[tp.topic]
		if !ok {
			i = len(mk.Topics)
			byTopic[tp.topic] = i
			t := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
			t.Topic = tp.topic
			mk.Topics = append(mk.Topics, t)
		}
		mk.Topics[i].Partitions = append(mk.Topics[i].Partitions, tp.idx)
	}
	req.Markers = append(req.Markers, mk)
	ctx, cancel := context.WithTimeout(context.Background(), max(time.Until(deadline), 0)+markerRemoteExtra)
	defer cancel()
	go func() {
		select {
		case <-m.b.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	kresp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return tps, fmt.Errorf("WriteTxnMarkers to broker %d at %s: %w", leader, addr, err)
	}
	resp := kresp.(*kmsg.WriteTxnMarkersResponse)
	var left []markerTP
	var first error
	written := map[markerTP]bool{}
	for _, rm := range resp.Markers {
		for _, rt := range rm.Topics {
			for _, rp := range rt.Partitions {
				tp := markerTP{rt.Topic, rp.Partition}
				if rp.ErrorCode == 0 || rp.ErrorCode == kerr.UnknownTopicOrPartition.Code && !m.b.topicExists(rt.Topic) {
					written[tp] = true
				} else if first == nil {
					first = fmt.Errorf("WriteTxnMarkers to broker %d: %s-%d: %w", leader, rt.Topic, rp.Partition, kerr.ErrorForCode(rp.ErrorCode))
				}
			}
		}
	}
	for _, tp := range tps {
		if !written[tp] {
			left = append(left, tp)
		}
	}
	if len(left) > 0 && first == nil {
		first = errors.New("WriteTxnMarkers answer left partitions out")
	}
	return left, first
}

// topicExists reports whether the metadata still has the topic.
func (b *Broker) topicExists(name string) bool {
	_, ok := b.meta.Topic(name)
	return ok
}

// Close closes the clients; the transaction coordinator calls it on
// shutdown once no end runs any more.
func (m *txnMarkers) Close() { m.clients.close() }
