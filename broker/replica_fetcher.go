package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker/commitlog"
)

// Replication, the follower's side: one fetcher per leader broker fetches
// every partition this node follows there in one Fetch request, as a
// replica (replica id = this node), long-polling like a consumer. Records
// are appended as the leader stored them and fsynced before the next fetch
// asks past them, so the offset a follower fetches from tells the leader
// what is durable here. A diverging epoch in the answer (KIP-595's
// DivergingEpoch, Fetch v12) truncates the log to where it agrees with the
// leader before fetching again.

const (
	replicaFetchWait      = 500 * time.Millisecond
	replicaFetchMaxBytes  = 64 << 20
	replicaPartitionBytes = 8 << 20
	replicaFetchBackoff   = 100 * time.Millisecond
)

// fetchers are the fetchers of this node by leader id.
type fetchers struct {
	b  *Broker
	mu sync.Mutex
	by map[int32]*fetcher
}

// follow makes p fetched from leader at epoch (a leader of -1 fetches from
// no one).
func (fs *fetchers) follow(p *partition, leader, epoch int32) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for id, f := range fs.by {
		if id != leader {
			f.remove(p)
		}
	}
	if leader < 0 || fs.b.isClosing() {
		return
	}
	if fs.by == nil {
		fs.by = map[int32]*fetcher{}
	}
	f := fs.by[leader]
	if f == nil {
		f = newFetcher(fs.b, leader)
		fs.by[leader] = f
	}
	f.add(p, epoch)
}

// remove stops fetching p from anyone.
func (fs *fetchers) remove(p *partition) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, f := range fs.by {
		f.remove(p)
	}
}

// close stops every fetcher and waits for them.
func (fs *fetchers) close() {
	fs.mu.Lock()
	all := fs.by
	fs.by = nil
	fs.mu.Unlock()
	for _, f := range all {
		f.stop()
	}
}

// fetcher fetches from one leader.
type fetcher struct {
	b      *Broker
	leader int32
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{}

	mu    sync.Mutex
	parts map[*partition]int32 // → the leader epoch to fetch at

	cl        *kgo.Client
	clAddr    string
	clVersion uint64 // metadata version clAddr was read at

	truncated bool // a log was cut this round: checkpoint before the next (round's goroutine only)
}

func newFetcher(b *Broker, leader int32) *fetcher {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fetcher{b: b, leader: leader, ctx: ctx, cancel: cancel, done: make(chan struct{}), wake: make(chan struct{}, 1), parts: map[*partition]int32{}}
	go f.run()
	return f
}

func (f *fetcher) add(p *partition, epoch int32) {
	f.mu.Lock()
	f.parts[p] = epoch
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fetcher) remove(p *partition) {
	f.mu.Lock()
	delete(f.parts, p)
	f.mu.Unlock()
}

func (f *fetcher) stop() {
	f.cancel()
	<-f.done
	if f.cl != nil {
		f.cl.Close()
	}
}

// fetchTarget is one partition of a fetch round.
type fetchTarget struct {
	p     *partition
	epoch int32 // the leader epoch fetched at
	// What the request asked with, for the logs.
	offset    int64
	lastEpoch int32
}

func (f *fetcher) snapshot() []fetchTarget {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]fetchTarget, 0, len(f.parts))
	for p, e := range f.parts {
		out = append(out, fetchTarget{p: p, epoch: e})
	}
	return out
}

func (f *fetcher) run() {
	defer close(f.done)
	for {
		targets := f.snapshot()
		if len(targets) == 0 {
			select {
			case <-f.ctx.Done():
				return
			case <-f.wake:
				continue
			}
		}
		if err := f.round(targets); err != nil {
			if f.ctx.Err() != nil {
				return
			}
			f.b.logger.Debug("replica fetch", "leader", f.leader, "err", err)
			select {
			case <-f.ctx.Done():
				return
			case <-time.After(replicaFetchBackoff):
			}
		}
	}
}

// client is the Kafka client of the leader's registered address, looked
// up again only when the metadata changed (not on every round).
func (f *fetcher) client() (*kgo.Client, error) {
	v := f.b.meta.Version()
	if f.cl != nil && f.clVersion == v {
		return f.cl, nil
	}
	addr := f.b.brokerAddr(f.leader)
	if addr == "" {
		return nil, fmt.Errorf("leader %d has no registration", f.leader)
	}
	if f.cl != nil && f.clAddr == addr {
		f.clVersion = v
		return f.cl, nil
	}
	if f.cl != nil {
		f.cl.Close()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID(fmt.Sprintf("sluice-replica-%d", f.b.cfg.NodeID)),
		kgo.RetryTimeout(0), kgo.RequestRetries(0))
	if err != nil {
		return nil, err
	}
	f.cl, f.clAddr, f.clVersion = cl, addr, v
	return cl, nil
}

// round sends one Fetch for targets and applies its answer.
func (f *fetcher) round(targets []fetchTarget) error {
	cl, err := f.client()
	if err != nil {
		return err
	}
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	req.ReplicaID = f.b.cfg.NodeID
	req.MaxWaitMillis = int32(replicaFetchWait / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = replicaFetchMaxBytes
	req.SessionEpoch = -1
	byTopic := map[string]int{}
	where := map[string]map[int32]fetchTarget{}
	for _, t := range targets {
		name := t.p.t.name
		i, ok := byTopic[name]
		if !ok {
			i = len(req.Topics)
			byTopic[name] = i
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = name
			req.Topics = append(req.Topics, rt)
			where[name] = map[int32]fetchTarget{}
		}
		start, end := t.p.log.Offsets()
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = t.p.index
		rp.CurrentLeaderEpoch = t.epoch
		rp.FetchOffset = end
		rp.LastFetchedEpoch = t.p.log.LatestEpoch()
		rp.LogStartOffset = start
		rp.PartitionMaxBytes = replicaPartitionBytes
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		t.offset, t.lastEpoch = rp.FetchOffset, rp.LastFetchedEpoch
		where[name][t.p.index] = t
	}
	ctx, cancel := context.WithTimeout(f.ctx, replicaFetchWait+10*time.Second)
	defer cancel()
	kresp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return err
	}
	resp := kresp.(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 {
		return kerr.ErrorForCode(resp.ErrorCode)
	}
	var syncs []<-chan error
	backoff := false
	for _, st := range resp.Topics {
		for i := range st.Partitions {
			sp := &st.Partitions[i]
			t, ok := where[st.Topic][sp.Partition]
			if !ok {
				continue
			}
			appended, retry := f.apply(t, sp)
			backoff = backoff || retry
			if appended {
				syncs = append(syncs, f.b.flusher.Sync(t.p.log, t.p.log.EndOffset()))
			}
		}
	}
	if f.truncated {
		// Once per round, not per partition cut: a failover cuts many.
		f.truncated = false
		f.checkpointAfterTruncation()
	}
	// What the next fetch asks past must be durable here (decision 8).
	for _, ch := range syncs {
		if err := <-ch; err != nil {
			return fmt.Errorf("fsync replicated records: %w", err)
		}
	}
	if backoff {
		select {
		case <-f.ctx.Done():
		case <-time.After(replicaFetchBackoff):
		}
	}
	return nil
}

// apply applies one partition's answer. appended reports records written;
// retry that the partition cannot make progress right now.
func (f *fetcher) apply(t fetchTarget, sp *kmsg.FetchResponseTopicPartition) (appended, retry bool) {
	p := t.p
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if r := p.role.Load(); r.leads() || r.leader != f.leader || r.epoch != t.epoch {
		return false, false // the role moved on since the request
	}
	logger := f.b.logger.With("topic", p.t.name, "partition", p.index, "leader", f.leader)
	switch err := kerr.ErrorForCode(sp.ErrorCode); {
	case err == nil:
	case errors.Is(err, kerr.OffsetOutOfRange):
		f.outOfRange(p, sp.LogStartOffset, logger)
		return false, true
	default:
		// Not leader, fenced or unknown epoch: the metadata will catch up.
		logger.Debug("replica fetch partition error", "err", err)
		return false, true
	}
	if sp.DivergingEpoch.EndOffset >= 0 {
		return false, !f.truncate(p, sp.DivergingEpoch.Epoch, sp.DivergingEpoch.EndOffset, logger.With("fetch_offset", t.offset, "last_fetched_epoch", t.lastEpoch))
	}
	if len(sp.RecordBatches) > 0 {
		n, err := p.log.AppendReplica(sp.RecordBatches)
		// Batches before a failing one stay appended: they must be
		// synced before the next fetch asks past them like any other.
		appended = n > 0
		if err != nil {
			if !errors.Is(err, commitlog.ErrNotContiguous) {
				logger.Error("append replicated records", "err", err)
			}
			return appended, true
		}
	}
	p.hw.Store(min(sp.HighWatermark, p.log.EndOffset()))
	if start := p.log.StartOffset(); sp.LogStartOffset > start {
		if _, err := p.log.DeleteRecordsBefore(min(sp.LogStartOffset, p.hw.Load()), -1); err != nil {
			logger.Warn("follow the leader's log start", "err", err)
		}
	}
	return appended, false
}

// truncate cuts the log where it diverges from the leader's: the leader's
// end of the epoch it holds at or below ours, bounded by our own end of
// that epoch (KIP-101/279).
func (f *fetcher) truncate(p *partition, leaderEpoch int32, leaderEnd int64, logger interface{ Info(string, ...any) }) bool {
	to := leaderEnd
	if ep, end := p.log.EndOffsetForEpoch(leaderEpoch); ep >= 0 {
		to = min(to, end)
	}
	to = min(to, p.log.EndOffset())
	logger.Info("truncating diverged replica", "epoch", leaderEpoch, "leader_end", leaderEnd, "to", to, "end", p.log.EndOffset())
	if err := p.log.TruncateTo(to); err != nil {
		f.b.logger.Error("truncate replica", "topic", p.t.name, "partition", p.index, "err", err)
		return false
	}
	p.hw.Store(min(p.hw.Load(), p.log.EndOffset()))
	f.truncated = true
	return true
}

// outOfRange handles a fetch offset the leader does not have: below its log
// start the local log restarts there; above its end (no epoch told us where
// we diverge) the local log goes back to the high watermark.
func (f *fetcher) outOfRange(p *partition, leaderStart int64, logger interface{ Info(string, ...any) }) {
	end := p.log.EndOffset()
	if end < leaderStart {
		logger.Info("replica behind the leader's log start", "end", end, "leader_start", leaderStart)
		if err := p.log.TruncateFullyAndStartAt(leaderStart); err != nil {
			f.b.logger.Error("restart replica log", "topic", p.t.name, "partition", p.index, "err", err)
		}
		p.hw.Store(leaderStart)
		f.truncated = true
		return
	}
	to := min(p.hw.Load(), end)
	logger.Info("replica ahead of the leader", "end", end, "to", to)
	if err := p.log.TruncateTo(to); err != nil {
		f.b.logger.Error("truncate replica", "topic", p.t.name, "partition", p.index, "err", err)
		return
	}
	f.truncated = true
}

// checkpointAfterTruncation records the recovery points a truncation
// lowered: else a crash would trust segments rolled after the cut without
// checking them.
func (f *fetcher) checkpointAfterTruncation() {
	if err := f.b.writeCheckpoints(); err != nil {
		f.b.logger.Error("checkpoint after truncation", "err", err)
	}
}
