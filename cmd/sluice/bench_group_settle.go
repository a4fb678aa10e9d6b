package main

// The settle half of `sluice bench group`: how long a consumer group takes,
// after a member joins or leaves, until every member holds its new
// assignment. The assignments are followed through franz-go's
// OnPartitions{Assigned,Revoked,Lost} callbacks.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// settleConfig describes one settle run for one balancer.
type settleConfig struct {
	Brokers    []string
	Topic      string
	Balancer   string        // range or cooperative-sticky
	Members    int           // members of the steady group
	Partitions int32         // partitions of the topic
	Rebalances int           // times an extra member joins, and leaves again
	Heartbeat  time.Duration // kgo.HeartbeatInterval of every member
	Timeout    time.Duration // bound on each wait for the group to settle
}

// settleResult is what one settle run reports. Each rebalance is timed
// from just before the change (the new member's client is created, or the
// leaving member's Close is called) to the callback that completed the
// assignment: every expected member holds at least one partition and
// together they hold each partition of the topic exactly once.
type settleResult struct {
	Balancer    string    `json:"balancer"`
	Members     int       `json:"members"`
	Partitions  int32     `json:"partitions"`
	HeartbeatMs float64   `json:"heartbeat_ms"`
	FormMs      float64   `json:"form_ms"` // Members clients created at once, from the last creation
	Joins       int       `json:"joins"`
	JoinP50Ms   float64   `json:"join_p50_ms"`
	JoinP99Ms   float64   `json:"join_p99_ms"`
	JoinMaxMs   float64   `json:"join_max_ms"`
	Leaves      int       `json:"leaves"`
	LeaveP50Ms  float64   `json:"leave_p50_ms"`
	LeaveP99Ms  float64   `json:"leave_p99_ms"`
	LeaveMaxMs  float64   `json:"leave_max_ms"`
	JoinMs      []float64 `json:"join_ms"`
	LeaveMs     []float64 `json:"leave_ms"`
	// When each sample started, to match an outlier with broker logs.
	JoinAt  []time.Time `json:"join_at"`
	LeaveAt []time.Time `json:"leave_at"`
	Error   string      `json:"error,omitempty"`
}

// percentile returns the nearest-rank q-quantile (0 < q <= 1) of sorted:
// the smallest sample with at least q of all samples at or below it. With
// 20 samples, p99 is the largest. Zero for no samples.
func percentile(sorted []float64, q float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(n))) - 1
	return sorted[min(max(i, 0), n-1)]
}

// summarize returns the p50, p99 and maximum of samples.
func summarize(samples []float64) (p50, p99, maxv float64) {
	s := slices.Clone(samples)
	slices.Sort(s)
	return percentile(s, 0.50), percentile(s, 0.99), percentile(s, 1)
}

// assignmentSettled reports whether the members in want, together, hold
// every partition in [0, parts) exactly once and each holds at least one.
// Partitions held by members outside want (one that is leaving) are ignored.
func assignmentSettled(held map[int]map[int32]bool, want []int, parts int32) bool {
	seen := make([]bool, parts)
	covered := int32(0)
	for _, m := range want {
		ps := held[m]
		if len(ps) == 0 {
			return false
		}
		for p := range ps {
			if p < 0 || p >= parts || seen[p] {
				return false // a partition the topic lacks, or held twice
			}
			seen[p] = true
			covered++
		}
	}
	return covered == parts
}

// settleTracker follows the partitions of one topic that each member holds
// and notes the moment the group is settled for the members expected.
type settleTracker struct {
	mu      sync.Mutex
	topic   string
	parts   int32
	held    map[int]map[int32]bool
	gone    map[int]bool
	want    []int
	settled chan struct{} // closed when settled; nil when nobody waits
	at      time.Time
}

func newSettleTracker(topic string, parts int32) *settleTracker {
	return &settleTracker{topic: topic, parts: parts, held: map[int]map[int32]bool{}, gone: map[int]bool{}}
}

// expect starts a wait for the members in want to settle and returns the
// channel closed when they have; settledAt then gives the moment.
func (t *settleTracker) expect(want []int) <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.want = slices.Clone(want)
	t.settled = make(chan struct{})
	ch := t.settled
	t.checkLocked()
	return ch
}

func (t *settleTracker) settledAt() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.at
}

// forget drops a member that is leaving, so that its last callbacks do not
// count. Member numbers are not reused.
func (t *settleTracker) forget(member int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gone[member] = true
	delete(t.held, member)
}

func (t *settleTracker) checkLocked() {
	if t.settled != nil && assignmentSettled(t.held, t.want, t.parts) {
		t.at = time.Now()
		close(t.settled)
		t.settled = nil
	}
}

// update applies one callback: add or remove the partitions of the topic.
// Callbacks of members that left (forget) are ignored.
func (t *settleTracker) update(member int, ps map[string][]int32, add bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gone[member] {
		return
	}
	h := t.held[member]
	if h == nil {
		h = map[int32]bool{}
		t.held[member] = h
	}
	for _, p := range ps[t.topic] {
		if add {
			h[p] = true
		} else {
			delete(h, p)
		}
	}
	t.checkLocked()
}

// opts are the callbacks of one member.
func (t *settleTracker) opts(member int) []kgo.Opt {
	on := func(add bool) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { t.update(member, ps, add) }
	}
	return []kgo.Opt{kgo.OnPartitionsAssigned(on(true)), kgo.OnPartitionsRevoked(on(false)), kgo.OnPartitionsLost(on(false))}
}

func balancerFor(name string) (kgo.GroupBalancer, error) {
	switch name {
	case "range":
		return kgo.RangeBalancer(), nil
	case "cooperative-sticky":
		return kgo.CooperativeStickyBalancer(), nil
	}
	return nil, fmt.Errorf("unknown balancer %q (want range or cooperative-sticky)", name)
}

// runSettleBench forms a group of cfg.Members members, then cfg.Rebalances
// times adds one member and removes it again, timing each change until the
// group has settled. Every wait is bounded by cfg.Timeout.
func runSettleBench(ctx context.Context, cfg settleConfig) (settleResult, error) {
	res := settleResult{Balancer: cfg.Balancer, Members: cfg.Members, Partitions: cfg.Partitions, HeartbeatMs: durMs(cfg.Heartbeat)}
	if cfg.Members <= 0 || cfg.Rebalances < 0 || cfg.Timeout <= 0 || cfg.Heartbeat <= 0 {
		return res, errors.New("members, heartbeat and the settle timeout must be positive")
	}
	if int(cfg.Partitions) < cfg.Members+1 {
		return res, fmt.Errorf("need more partitions (%d) than members (%d), so that every member holds one", cfg.Partitions, cfg.Members)
	}
	if _, err := balancerFor(cfg.Balancer); err != nil {
		return res, err
	}
	admin, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		return res, fmt.Errorf("create client: %w", err)
	}
	err = ensureTopic(ctx, admin, cfg.Topic, cfg.Partitions)
	admin.Close()
	if err != nil {
		return res, err
	}

	group := fmt.Sprintf("sluice-bench-settle-%s-%08x", cfg.Balancer, rand.Uint32())
	tr := newSettleTracker(cfg.Topic, cfg.Partitions)
	clients := map[int]*kgo.Client{}
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	join := func(m int) error {
		bal, _ := balancerFor(cfg.Balancer) // each member its own, as separate processes would have
		opts := append([]kgo.Opt{
			kgo.SeedBrokers(cfg.Brokers...), kgo.ClientID(fmt.Sprintf("sluice-bench-member-%d", m)),
			kgo.ConsumerGroup(group), kgo.ConsumeTopics(cfg.Topic), kgo.Balancers(bal),
			kgo.HeartbeatInterval(cfg.Heartbeat), kgo.DisableAutoCommit(),
		}, tr.opts(m)...)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return fmt.Errorf("create member %d: %w", m, err)
		}
		clients[m] = cl
		return nil
	}
	wait := func(ch <-chan struct{}, what string) error {
		t := time.NewTimer(cfg.Timeout)
		defer t.Stop()
		select {
		case <-ch:
			return nil
		case <-t.C:
			return fmt.Errorf("%s: group did not settle within %v", what, cfg.Timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	members := make([]int, cfg.Members)
	for i := range members {
		members[i] = i
	}

	// Form the group: every member at once, timed from the last one.
	ch := tr.expect(members)
	var t0 time.Time
	for _, m := range members {
		t0 = time.Now()
		if err := join(m); err != nil {
			return res, err
		}
	}
	if err := wait(ch, "forming the group"); err != nil {
		res.Error = err.Error()
		return res, nil
	}
	res.FormMs = durMs(tr.settledAt().Sub(t0))

	// The members' heartbeat timers restart together when a rebalance ends,
	// so a change made right after one would always wait a full interval
	// for the next heartbeat. A random pause of up to one interval makes
	// the change land anywhere between two heartbeats, as it would in use.
	pause := func() error {
		t := time.NewTimer(rand.N(cfg.Heartbeat))
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for i := range cfg.Rebalances {
		// One more member joins ...
		extra := cfg.Members + i
		if err := pause(); err != nil {
			return res, err
		}
		ch = tr.expect(append(slices.Clone(members), extra))
		t0 = time.Now()
		if err := join(extra); err != nil {
			return res, err
		}
		if err := wait(ch, fmt.Sprintf("join %d", i+1)); err != nil {
			res.Error = err.Error()
			break
		}
		res.JoinMs = append(res.JoinMs, durMs(tr.settledAt().Sub(t0)))
		res.JoinAt = append(res.JoinAt, t0)

		// ... and leaves again (Close sends LeaveGroup).
		if err := pause(); err != nil {
			return res, err
		}
		tr.forget(extra)
		ch = tr.expect(members)
		t0 = time.Now()
		clients[extra].Close()
		delete(clients, extra)
		if err := wait(ch, fmt.Sprintf("leave %d", i+1)); err != nil {
			res.Error = err.Error()
			break
		}
		res.LeaveMs = append(res.LeaveMs, durMs(tr.settledAt().Sub(t0)))
		res.LeaveAt = append(res.LeaveAt, t0)
	}
	res.Joins, res.Leaves = len(res.JoinMs), len(res.LeaveMs)
	res.JoinP50Ms, res.JoinP99Ms, res.JoinMaxMs = summarize(res.JoinMs)
	res.LeaveP50Ms, res.LeaveP99Ms, res.LeaveMaxMs = summarize(res.LeaveMs)
	return res, nil
}
