package broker

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-io/sluice/broker/commitlog"
	"github.com/sluice-io/sluice/broker/meta"
)

// topic is the broker's live view of one topic: its partitions' logs and
// its effective configs, kept in step with the metadata store by reconcile.
type topic struct {
	name     string
	id       [16]byte
	internal bool
	parts    []*partition // guarded by Broker.mu
	view     atomic.Pointer[topicView]
	settings atomic.Pointer[topicSettings]
}

// topicSettings are the configs the produce path reads, parsed once.
type topicSettings struct {
	maxMessageBytes int64
	logAppendTime   bool
	flushMessages   int64
	flushMs         int64
	compact         bool
	beforeMaxMs     int64
	afterMaxMs      int64
	codec           int8 // compression.type as a codec number; -1 keeps the producer's
	minInsync       int  // min.insync.replicas
	unclean         bool // unclean.leader.election.enable
}

func newSettings(v topicView) *topicSettings {
	return &topicSettings{
		maxMessageBytes: v.long("max.message.bytes"),
		logAppendTime:   v.str("message.timestamp.type") == "LogAppendTime",
		flushMessages:   v.long("flush.messages"),
		flushMs:         v.long("flush.ms"),
		compact:         strings.Contains(v.str("cleanup.policy"), "compact"),
		beforeMaxMs:     v.long("message.timestamp.before.max.ms"),
		afterMaxMs:      v.long("message.timestamp.after.max.ms"),
		codec:           codecNumber(v.str("compression.type")),
		minInsync:       int(v.long("min.insync.replicas")),
		unclean:         v.str("unclean.leader.election.enable") == "true",
	}
}

// partition is one partition replica on this broker, leader or follower.
type partition struct {
	t     *topic
	index int32
	log   *commitlog.Log
	epoch atomic.Int32 // leader epoch, as in role
	replicaState

	lastFlush atomic.Int64 // unix ms of the last flush, for flush.ms

	waitMu  sync.Mutex
	waiters map[chan struct{}]struct{} // fetches long-polling this partition
}

// notify wakes the fetches waiting on this partition.
func (p *partition) notify() {
	p.waitMu.Lock()
	for ch := range p.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	p.waitMu.Unlock()
}

func (p *partition) watch(ch chan struct{}, on bool) {
	p.waitMu.Lock()
	if on {
		if p.waiters == nil {
			p.waiters = map[chan struct{}]struct{}{}
		}
		p.waiters[ch] = struct{}{}
	} else {
		delete(p.waiters, ch)
	}
	p.waitMu.Unlock()
}

// topicByName returns the live topic or nil.
func (b *Broker) topicByName(name string) *topic {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.topics[name]
}

// partition returns a live partition or nil.
func (b *Broker) partition(name string, idx int32) *partition {
	b.mu.RLock()
	defer b.mu.RUnlock()
	t := b.topics[name]
	if t == nil || idx < 0 || int(idx) >= len(t.parts) {
		return nil
	}
	return t.parts[idx] // nil when this node holds no replica of it
}

// allPartitions snapshots every live partition.
func (b *Broker) allPartitions() []*partition {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var out []*partition
	for _, t := range b.topics {
		for _, p := range t.parts {
			if p != nil {
				out = append(out, p)
			}
		}
	}
	return out
}

func partitionDir(dataDir, topic string, idx int32) string {
	return filepath.Join(dataDir, fmt.Sprintf("%s-%d", topic, idx))
}

// reconcile brings the open topics and partitions in line with the metadata
// store: opens the partitions this node holds a replica of, gives each its
// role (leader or follower), applies config changes, closes replicas moved
// away and removes deleted topics. It is idempotent and runs after every
// metadata change. New partitions of all topics are opened together by a
// pool of workers, which bounds start-up with thousands of partitions.
func (b *Broker) reconcile() error {
	b.reconcMu.Lock()
	defer b.reconcMu.Unlock()
	want := b.meta.Topics()
	seen := make(map[string]bool, len(want))
	var jobs []openJob
	type update struct {
		t   *topic
		mt  meta.Topic
		cfg commitlog.Config
	}
	updates := make([]update, 0, len(want))
	for _, mt := range want {
		seen[mt.Name] = true
		t, cfg := b.prepareTopic(mt)
		b.mu.RLock()
		parts := t.parts
		b.mu.RUnlock()
		for i, mp := range mt.Partitions {
			if b.hostsReplica(mp) && (i >= len(parts) || parts[i] == nil) {
				jobs = append(jobs, openJob{t: t, idx: int32(i), cfg: cfg})
			}
		}
		updates = append(updates, update{t, mt, cfg})
	}
	firstErr := b.openPartitions(jobs)
	b.incomplete.Store(firstErr != nil) // retried by the background loop
	if len(jobs) > 0 {
		// New partition directories survive a power loss only once the
		// data dir's entries are on disk.
		if err := syncDir(b.cfg.DataDir); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("fsync data dir: %w", err)
		}
	}

	opened := map[*partition]bool{}
	var moved []*partition
	b.mu.Lock()
	for _, u := range updates {
		if n := len(u.mt.Partitions); len(u.t.parts) < n {
			u.t.parts = append(u.t.parts, make([]*partition, n-len(u.t.parts))...)
		}
		for i, mp := range u.mt.Partitions {
			if p := u.t.parts[i]; p != nil && !b.hostsReplica(mp) {
				moved = append(moved, p)
				u.t.parts[i] = nil
			}
		}
	}
	for _, j := range jobs {
		if j.p != nil {
			j.t.parts[j.idx] = j.p
			opened[j.p] = true
		}
	}
	var gone []*topic
	for _, u := range updates {
		b.topics[u.mt.Name] = u.t
	}
	for name, t := range b.topics {
		if !seen[name] {
			gone = append(gone, t)
			delete(b.topics, name)
		}
	}
	b.mu.Unlock()
	for _, u := range updates {
		b.mu.RLock()
		parts := u.t.parts
		b.mu.RUnlock()
		for i, p := range parts {
			if p == nil {
				continue
			}
			if !opened[p] {
				p.log.SetConfig(u.cfg)
			}
			b.applyRole(p, b.roleFor(u.mt.Partitions[i]))
		}
	}
	for _, p := range moved {
		b.dropReplica(p)
	}
	for _, t := range gone {
		b.removeTopicLogs(t)
	}
	return firstErr
}

// prepareTopic returns the live topic for mt (a new one if the topic is new
// or was deleted and re-created under the same name) with its configs
// brought up to date.
func (b *Broker) prepareTopic(mt meta.Topic) (*topic, commitlog.Config) {
	t := b.topicByName(mt.Name)
	if t != nil && t.id != mt.ID {
		b.mu.Lock()
		delete(b.topics, mt.Name)
		b.mu.Unlock()
		b.removeTopicLogs(t)
		t = nil
	}
	if t == nil {
		t = &topic{name: mt.Name, id: mt.ID, internal: mt.Internal}
	}
	view := topicView{explicit: mt.Configs, broker: b.cfg.Settings}
	t.view.Store(&view)
	t.settings.Store(newSettings(view))
	return t, view.logConfig()
}

// openJob is one partition to open; p or err is filled by openPartitions.
type openJob struct {
	t   *topic
	idx int32
	cfg commitlog.Config
	p   *partition
	err error
}

// openPartitions opens the jobs' partitions in parallel and returns the
// first error.
func (b *Broker) openPartitions(jobs []openJob) error {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func(j *openJob) {
			defer func() { <-sem; wg.Done() }()
			j.p, j.err = b.openPartition(j.t, j.idx, j.cfg)
		}(&jobs[i])
	}
	wg.Wait()
	for _, j := range jobs {
		if j.err != nil {
			return j.err
		}
	}
	return nil
}

func (b *Broker) openPartition(t *topic, idx int32, cfg commitlog.Config) (*partition, error) {
	dir := partitionDir(b.cfg.DataDir, t.name, idx)
	fresh, err := checkPartitionMetadata(dir, t.id)
	if err != nil {
		return nil, err
	}
	key := filepath.Base(dir)
	recovery, start, hw := b.recovered[key], b.started[key], b.hwMarks[key]
	if fresh {
		recovery, start, hw = 0, 0, 0 // checkpoint entries belong to an older topic
	}
	l, err := commitlog.Open(dir, cfg, recovery, start, b.logger)
	if err != nil {
		return nil, fmt.Errorf("open partition %s: %w", key, err)
	}
	p := &partition{t: t, index: idx, log: l}
	p.lastFlush.Store(time.Now().UnixMilli())
	p.hw.Store(min(hw, l.EndOffset()))
	return p, nil
}

// checkPartitionMetadata writes Kafka's partition.metadata (the topic id)
// in a new partition directory and checks it in an existing one. A
// directory of an earlier topic of the same name (deleted and re-created)
// is cleared; anything unexpected is an error, never a reason to delete
// data. fresh reports a directory made now.
func checkPartitionMetadata(dir string, id [16]byte) (fresh bool, err error) {
	path := filepath.Join(dir, "partition.metadata")
	want := fmt.Sprintf("version: 0\ntopic_id: %s\n", base64.RawURLEncoding.EncodeToString(id[:]))
	got, err := os.ReadFile(path)
	switch {
	case err == nil && string(got) == want:
		return false, nil
	case err == nil && strings.HasPrefix(string(got), "version: 0\ntopic_id: "):
		// Another topic id: that topic was deleted; its data goes with it.
		if err := os.RemoveAll(dir); err != nil {
			return false, fmt.Errorf("remove the directory of a deleted topic: %w", err)
		}
	case err == nil:
		return false, fmt.Errorf("%s is not a partition.metadata file this broker understands", path)
	case !os.IsNotExist(err):
		return false, fmt.Errorf("read %s: %w", path, err)
	default:
		// No metadata file: only an empty directory (a crash between its
		// creation and the file's) may be taken over.
		if segs, _ := filepath.Glob(filepath.Join(dir, "*.log")); len(segs) > 0 {
			return false, fmt.Errorf("%s holds segments but no partition.metadata: refusing to reuse it", dir)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("create partition dir: %w", err)
	}
	return true, writeFileSync(path, []byte(want))
}

func (b *Broker) removeTopicLogs(t *topic) {
	for _, p := range t.parts {
		if p == nil {
			continue
		}
		b.fetchers.remove(p)
		if err := p.log.Remove(); err != nil {
			b.logger.Warn("remove partition", "topic", t.name, "partition", p.index, "err", err)
		}
		p.notify()
	}
}

// dropReplica removes a replica reassigned away from this node.
func (b *Broker) dropReplica(p *partition) {
	b.fetchers.remove(p)
	if p.t.internal && p.role.Load().leads() {
		b.coordinatorLeadership(p, false, p.epoch.Load())
	}
	if err := p.log.Remove(); err != nil {
		b.logger.Warn("remove reassigned replica", "topic", p.t.name, "partition", p.index, "err", err)
	}
	p.notify()
}

// closeLogs flushes and closes every log and writes the checkpoints.
// Logs close in parallel: with thousands of partitions each one's fsync
// would otherwise add up to seconds of shutdown.
func (b *Broker) closeLogs() error {
	var (
		first error
		mu    sync.Mutex
		wg    sync.WaitGroup
		sem   = make(chan struct{}, 16)
	)
	for _, p := range b.allPartitions() {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := p.log.Close(); err != nil {
				mu.Lock()
				first = cmp.Or(first, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := b.writeCheckpoints(); err != nil && first == nil {
		first = err
	}
	return first
}

// codecNumber maps compression.type to the batch attribute codec.
func codecNumber(name string) int8 {
	switch strings.ToLower(name) {
	case "uncompressed":
		return 0
	case "gzip":
		return 1
	case "snappy":
		return 2
	case "lz4":
		return 3
	case "zstd":
		return 4
	}
	return -1 // producer
}
