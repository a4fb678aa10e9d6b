package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/testbroker"
)

func TestPercentile(t *testing.T) {
	twenty := make([]float64, 20)
	for i := range twenty {
		twenty[i] = float64(i + 1)
	}
	for _, tc := range []struct {
		name   string
		sorted []float64
		q      float64
		want   float64
	}{
		{"empty", nil, 0.99, 0},
		{"one", []float64{7}, 0.5, 7},
		{"p50 of 4 is the 2nd", []float64{1, 2, 3, 4}, 0.5, 2},
		{"p50 of 5 is the 3rd", []float64{1, 2, 3, 4, 5}, 0.5, 3},
		{"p99 of 20 is the largest", twenty, 0.99, 20},
		{"p95 of 20 is the 19th", twenty, 0.95, 19},
		{"max", twenty, 1, 20},
		{"tiny q is the smallest", twenty, 0.0001, 1},
	} {
		if got := percentile(tc.sorted, tc.q); got != tc.want {
			t.Errorf("%s: percentile(%v, %v) = %v, want %v", tc.name, tc.sorted, tc.q, got, tc.want)
		}
	}
	if p50, p99, maxv := summarize([]float64{5, 1, 4, 2, 3}); p50 != 3 || p99 != 5 || maxv != 5 {
		t.Errorf("summarize = %v %v %v, want 3 5 5", p50, p99, maxv)
	}
}

func TestAssignmentSettled(t *testing.T) {
	set := func(ps ...int32) map[int32]bool {
		m := map[int32]bool{}
		for _, p := range ps {
			m[p] = true
		}
		return m
	}
	for _, tc := range []struct {
		name string
		held map[int]map[int32]bool
		want []int
		ok   bool
	}{
		{"covers exactly", map[int]map[int32]bool{0: set(0, 1), 1: set(2, 3)}, []int{0, 1}, true},
		{"a partition missing", map[int]map[int32]bool{0: set(0, 1), 1: set(2)}, []int{0, 1}, false},
		{"a partition twice", map[int]map[int32]bool{0: set(0, 1, 2), 1: set(2, 3)}, []int{0, 1}, false},
		{"a member without partitions", map[int]map[int32]bool{0: set(0, 1, 2, 3), 1: set()}, []int{0, 1}, false},
		{"a member not heard of yet", map[int]map[int32]bool{0: set(0, 1, 2, 3)}, []int{0, 1}, false},
		{"a partition the topic lacks", map[int]map[int32]bool{0: set(0, 1), 1: set(2, 3, 4)}, []int{0, 1}, false},
		{"a leaving member is ignored", map[int]map[int32]bool{0: set(0, 1), 1: set(2, 3), 2: set(3)}, []int{0, 1}, true},
		{"the leaver's partitions not yet moved", map[int]map[int32]bool{0: set(0), 1: set(2, 3), 2: set(1)}, []int{0, 1}, false},
	} {
		if got := assignmentSettled(tc.held, tc.want, 4); got != tc.ok {
			t.Errorf("%s: settled = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

// TestSettleTrackerCooperative plays the callbacks of a cooperative
// rebalance (revoke first, assign in a second round) and of a leave.
func TestSettleTrackerCooperative(t *testing.T) {
	tr := newSettleTracker("t", 4)
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	ch := tr.expect([]int{0, 1})
	tr.update(0, map[string][]int32{"t": {0, 1, 2, 3}, "other": {9}}, true)
	if closed(ch) {
		t.Fatal("settled before member 1 holds anything")
	}
	// Round 1: member 0 gives up 2 and 3; round 2: member 1 gets them.
	tr.update(0, map[string][]int32{"t": {2, 3}}, false)
	tr.update(1, map[string][]int32{"t": {2}}, true)
	if closed(ch) {
		t.Fatal("settled with partition 3 unassigned")
	}
	before := time.Now()
	tr.update(1, map[string][]int32{"t": {3}}, true)
	if !closed(ch) || tr.settledAt().Before(before) {
		t.Fatalf("not settled when every partition is held once (at %v)", tr.settledAt())
	}

	// Member 1 leaves: its late revoke and a stray assign are ignored.
	tr.forget(1)
	ch = tr.expect([]int{0})
	tr.update(1, map[string][]int32{"t": {2, 3}}, true)
	if closed(ch) {
		t.Fatal("settled before member 0 took the leaver's partitions")
	}
	tr.update(0, map[string][]int32{"t": {2, 3}}, true)
	if !closed(ch) {
		t.Fatal("not settled after member 0 took every partition")
	}
}

// TestBenchGroup runs a small `sluice bench group` against Sluice itself
// (no initial rebalance delay) and checks the shape of what it reports.
func TestBenchGroup(t *testing.T) {
	b := testbroker.Start(t)
	out := sluiceRun(t, b.Addr(), "", "bench", "group", "--members", "3", "--partitions", "6", "--rebalances", "2",
		"--heartbeat", "100ms", "--settle-timeout", "20s", "--clients", "2", "--inflight", "2", "--groups", "2,1",
		"--commits", "400", "--duration", "10s", "--format", "json")
	var r groupBenchResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench group json: %v\n%s", err, out)
	}
	if r.Errors != 0 || r.Topic != groupBenchTopic || r.Partitions != 6 || len(r.Settle) != 2 || len(r.Commit) != 2 {
		t.Fatalf("bench group result: %s", out)
	}
	for i, s := range r.Settle {
		if s.Balancer != []string{"range", "cooperative-sticky"}[i] || s.Joins != 2 || s.Leaves != 2 || s.FormMs <= 0 ||
			s.JoinP50Ms <= 0 || s.JoinP50Ms > s.JoinP99Ms || s.JoinP99Ms > s.JoinMaxMs || s.LeaveMaxMs <= 0 {
			t.Errorf("settle result %d: %+v", i, s)
		}
	}
	for i, c := range r.Commit {
		if c.Groups != []int{2, 1}[i] || c.Commits != 400 || c.Errors != 0 || c.CommitsPerSec <= 0 || c.P50Ms > c.MaxMs {
			t.Errorf("commit result %d: %+v", i, c)
		}
	}
}
