package broker

import (
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/broker/commitlog"
)

// testLeader opens a log with n one-record batches and leads it at
// epoch 0 with replicas 1, 2, 3 and the given ISR.
func testLeader(t *testing.T, n int, isr ...int32) (*Broker, *partition) {
	t.Helper()
	l, err := commitlog.Open(t.TempDir(), commitlog.DefaultConfig(), 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	for range n {
		data := encodeBatch([]kvRecord{{[]byte("k"), []byte("v")}}, time.Now().UnixMilli(), -1, -1, 0)
		h, _ := commitlog.ParseHeader(data)
		if _, err := l.Append([]commitlog.Batch{{Data: data, Header: h}}, 0); err != nil {
			t.Fatal(err)
		}
	}
	b := &Broker{cfg: Config{NodeID: 1, GossipAddr: "x"}, closing: make(chan struct{}), logger: slog.New(slog.DiscardHandler)}
	b.fetchers.b = b
	tp := &topic{name: "t"}
	tp.settings.Store(&topicSettings{minInsync: 2})
	p := &partition{t: tp, log: l}
	r := &role{self: 1, leader: 1, replicas: []int32{1, 2, 3}, isr: isr}
	// applyRole without the broker's metadata: the parts that matter here.
	p.epochStart = l.EndOffset()
	p.followers = map[int32]*followerState{2: {leo: -1, lastCaughtUp: time.Now()}, 3: {leo: -1, lastCaughtUp: time.Now()}}
	p.role.Store(r)
	return b, p
}

func TestHighWatermarkFollowsTheISR(t *testing.T) {
	_, p := testLeader(t, 10, 1, 2, 3)
	r := p.role.Load()
	if hw := p.highWatermark(); hw != 0 {
		t.Fatalf("HW before any fetch = %d", hw)
	}
	now := time.Now()
	p.followerFetched(r, 2, 10, 10, now)
	if hw := p.highWatermark(); hw != 0 {
		t.Errorf("HW with follower 3 unheard of = %d, want 0", hw)
	}
	p.followerFetched(r, 3, 6, 10, now)
	if hw := p.highWatermark(); hw != 6 {
		t.Errorf("HW = %d, want 6 (the slowest ISR member)", hw)
	}
	p.followerFetched(r, 3, 4, 10, now) // a follower that truncated
	if hw := p.highWatermark(); hw != 6 {
		t.Errorf("HW went back to %d", hw)
	}
	// Out of the ISR, a follower holds nothing back.
	r2 := &role{self: 1, leader: 1, replicas: r.replicas, isr: []int32{1, 2}}
	p.role.Store(r2)
	p.repMu.Lock()
	p.advanceHWLocked(r2)
	p.repMu.Unlock()
	if hw := p.highWatermark(); hw != 10 {
		t.Errorf("HW after 3 left the ISR = %d, want 10", hw)
	}
	// A follower caught up with the high watermark asks to join.
	if join := p.followerFetched(r2, 3, 10, 10, now); !join {
		t.Error("a caught-up follower outside the ISR did not ask to join")
	}
	if join := p.followerFetched(r2, 3, 9, 10, now); join {
		t.Error("a follower below the high watermark asked to join")
	}
}

func TestLaggingFollowers(t *testing.T) {
	_, p := testLeader(t, 10, 1, 2, 3)
	r := p.role.Load()
	t0 := time.Now()
	p.followerFetched(r, 2, 10, 10, t0)                  // caught up at t0, then silent
	p.followerFetched(r, 3, 5, 10, t0)                   // behind at t0
	p.followerFetched(r, 3, 10, 12, t0.Add(time.Second)) // reached the leader's end of its previous fetch: caught up as of t0
	if lag := p.laggingFollowers(r, 1100*time.Millisecond, t0.Add(1200*time.Millisecond)); len(lag) != 2 {
		t.Errorf("lagging = %v, want [2 3]", lag)
	}
	p.followerFetched(r, 3, 12, 12, t0.Add(1100*time.Millisecond)) // fully caught up
	if lag := p.laggingFollowers(r, 500*time.Millisecond, t0.Add(1200*time.Millisecond)); len(lag) != 1 || lag[0] != 2 {
		t.Errorf("lagging = %v, want [2]", lag)
	}
}

func TestReplicaWait(t *testing.T) {
	b, p := testLeader(t, 10, 1, 2)
	r := p.role.Load()
	w := &replicaWait{p: p, role: r, end: 10}
	got := make(chan int16, 1)
	go func() { got <- w.wait(b, time.Now().Add(5*time.Second)) }()
	time.Sleep(20 * time.Millisecond)
	p.followerFetched(r, 2, 10, 10, time.Now())
	select {
	case code := <-got:
		if code != 0 {
			t.Errorf("wait = %v", kerr.ErrorForCode(code))
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the high watermark reached the records but the wait did not end")
	}

	// The leadership moves on: NOT_LEADER_OR_FOLLOWER.
	w = &replicaWait{p: p, role: r, end: 11}
	go func() { got <- w.wait(b, time.Now().Add(5*time.Second)) }()
	time.Sleep(20 * time.Millisecond)
	p.repMu.Lock()
	p.role.Store(&role{self: 1, leader: 2, epoch: 1, replicas: r.replicas, isr: []int32{2}})
	p.broadcastLocked()
	p.repMu.Unlock()
	if code := <-got; code != kerr.NotLeaderForPartition.Code {
		t.Errorf("wait after losing the leadership = %v", kerr.ErrorForCode(code))
	}

	// No progress: REQUEST_TIMED_OUT at the deadline.
	p.role.Store(r)
	w = &replicaWait{p: p, role: r, end: 11}
	if code := w.wait(b, time.Now().Add(50*time.Millisecond)); code != kerr.RequestTimedOut.Code {
		t.Errorf("wait past the deadline = %v", kerr.ErrorForCode(code))
	}
}

func TestTxnVerifiedGuard(t *testing.T) {
	var v txnVerified
	g := txnGuard{remote: true, pid: 7, epoch: 3, gen: v.gen[7]}
	if v.valid(g) {
		t.Fatal("valid before any verification")
	}
	v.by = map[int64]int16{7: 3}
	if !v.valid(g) {
		t.Fatal("verified write refused")
	}
	if v.valid(txnGuard{remote: true, pid: 7, epoch: 4}) {
		t.Error("another epoch passed as verified")
	}
	// The transaction's marker lands: the old guard is stale, and a new
	// transaction needs a new verification.
	v.markerWritten(7)
	if v.valid(g) {
		t.Error("a write verified before the marker passed after it")
	}
	if _, ok := v.by[7]; ok {
		t.Error("the verification outlived the marker")
	}
}

// TestHighWatermarkWakesFetches: consumers read up to the high watermark,
// so a long-polling fetch must be woken when it moves, not only when
// records are appended (they are appended before the ISR has them).
func TestHighWatermarkWakesFetches(t *testing.T) {
	_, p := testLeader(t, 10, 1, 2, 3)
	r := p.role.Load()
	wake := make(chan struct{}, 1)
	p.watch(wake, true)
	defer p.watch(wake, false)
	now := time.Now()
	p.followerFetched(r, 2, 10, 10, now)
	select {
	case <-wake:
		t.Fatal("woken while the high watermark stayed at 0")
	default:
	}
	p.followerFetched(r, 3, 10, 10, now)
	select {
	case <-wake:
	default:
		t.Fatalf("not woken when the high watermark moved to %d", p.highWatermark())
	}
}
