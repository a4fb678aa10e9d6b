package meta

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// leaderOf waits up to 10 s for one of the stores to lead.
func leaderOf(t *testing.T, stores ...*Store) *Store {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range stores {
			if s.IsLeader() {
				return s
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no leader within 10s")
	return nil
}

// eventually waits up to 10 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestThreeVoterQuorum bootstraps three clustered stores with the same
// voters, as bootstrap-expect does, and checks that exactly the leader
// writes, that followers apply what it writes, and that a removed voter
// leaves the configuration.
func TestThreeVoterQuorum(t *testing.T) {
	var stores []*Store
	for id := int32(1); id <= 3; id++ {
		s := openStore(t, Config{Dir: t.TempDir(), NodeID: id, RaftAddr: "127.0.0.1:0", Clustered: true})
		if s.HadState() || s.IsLeader() {
			t.Fatalf("fresh clustered store %d: had state %v, leader %v", id, s.HadState(), s.IsLeader())
		}
		stores = append(stores, s)
	}
	var voters []Server
	for _, s := range stores {
		voters = append(voters, Server{ID: s.NodeID(), Addr: s.RaftAddr(), Voter: true})
	}
	for _, s := range stores {
		if err := s.BootstrapVoters(voters); err != nil {
			t.Fatal(err)
		}
	}
	leader := leaderOf(t, stores...)
	if err := leader.EnsureClusterID(); err != nil {
		t.Fatal(err)
	}
	if err := leader.RegisterBroker(Broker{ID: 2, Host: "h2", Port: 9092, Rack: "r1", Roles: []string{"broker"}}); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, leader, TopicSpec{Name: "t", Partitions: 1})
	for _, s := range stores {
		eventually(t, "followers apply", func() bool {
			_, ok := s.Topic("t")
			return ok && len(s.Brokers()) == 1 && s.ClusterID() == leader.ClusterID() && s.LeaderID() == leader.NodeID()
		})
	}
	for _, s := range stores {
		if s == leader {
			continue
		}
		if errs := s.CreateTopics([]TopicSpec{{Name: "u", Partitions: 1}}); !errors.Is(errs[0], ErrNotController) {
			t.Fatalf("follower %d create: %v, want ErrNotController", s.NodeID(), errs[0])
		}
		if err := s.RegisterBroker(Broker{ID: 5, Host: "h5", Port: 1}); !errors.Is(err, ErrNotController) {
			t.Fatalf("follower %d register: %v, want ErrNotController", s.NodeID(), err)
		}
	}
	var gone int32
	for _, s := range stores {
		if s != leader {
			gone = s.NodeID()
			break
		}
	}
	if err := leader.RemoveServer(gone); err != nil {
		t.Fatal(err)
	}
	servers, err := leader.Servers()
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) != 2 || slices.ContainsFunc(servers, func(s Server) bool { return s.ID == gone }) {
		t.Fatalf("servers after removing %d: %+v", gone, servers)
	}
}

// TestBrokersSurviveSnapshot: registrations are part of the snapshot, and a
// snapshot written before clustering (no brokers) still restores.
func TestBrokersSurviveSnapshot(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, Config{Dir: dir})
	want := Broker{ID: 1, Host: "localhost", Port: 9092, Rack: "a", Roles: []string{"broker"}}
	if err := s.RegisterBroker(want); err != nil {
		t.Fatal(err)
	}
	if err := s.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	if got := s.Brokers(); len(got) != 1 || !got[0].equal(want) {
		t.Fatalf("brokers after snapshot and restart = %+v", got)
	}

	old := &snapshotDoc{Format: snapshotFormat, ClusterID: "x"}
	st, err := old.state()
	if err != nil || len(st.brokers) != 0 || st.brokers == nil {
		t.Fatalf("pre-cluster snapshot: %v, brokers %v", err, st.brokers)
	}
}
