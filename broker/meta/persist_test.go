package meta

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// reopen closes s and opens the same directory again.
func reopen(t *testing.T, s *Store) *Store {
	t.Helper()
	cfg := s.cfg
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return openStore(t, cfg)
}

// populate makes every kind of change, so a restart has each to replay.
func populate(t *testing.T, s *Store, prefix string) {
	t.Helper()
	mustCreate(t, s,
		TopicSpec{Name: prefix + "a", Partitions: 3, Configs: map[string]string{"retention.ms": "1000"}},
		TopicSpec{Name: prefix + "b", Partitions: 1, Internal: true},
		TopicSpec{Name: prefix + "gone", Partitions: 1},
	)
	if err := s.CreatePartitions(prefix+"a", 6, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetConfigs(prefix+"b", map[string]string{"cleanup.policy": "compact"}, nil, false); err != nil {
		t.Fatal(err)
	}
	if errs := s.DeleteTopics([]string{prefix + "gone"}); errs[0] != nil {
		t.Fatal(errs[0])
	}
}

type view struct {
	ClusterID string
	Version   uint64
	Topics    []Topic
}

func viewOf(s *Store) view { return view{s.ClusterID(), s.Version(), s.Topics()} }

func sameView(t *testing.T, what string, got, want view) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, Config{Dir: dir, NodeID: 4})
	populate(t, s, "")
	want := viewOf(s)
	if len(want.Topics) != 2 {
		t.Fatalf("topics = %+v", want.Topics)
	}
	for _, f := range []string{"raft.db", "snapshots"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}

	s = reopen(t, s)
	sameView(t, "after restart", viewOf(s), want)

	// It still takes changes, and a name deleted before the restart is free.
	mustCreate(t, s, TopicSpec{Name: "gone", Partitions: 2})
	if errs := s.CreateTopics([]TopicSpec{{Name: "a", Partitions: 1}}); !errors.Is(errs[0], ErrTopicExists) {
		t.Errorf("create a after restart: %v", errs[0])
	}
}

func TestRestartAfterSnapshot(t *testing.T) {
	s := openStore(t, Config{Dir: t.TempDir()})
	populate(t, s, "old-")

	// Keep no trailing entries, so the snapshot truncates the whole log.
	rc := s.raft.ReloadableConfig()
	rc.TrailingLogs = 0
	if err := s.raft.ReloadConfig(rc); err != nil {
		t.Fatal(err)
	}
	if err := s.raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	first, err := s.bolt.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first log index %d, version %d", first, s.Version())
	if first != 0 && first <= s.Version() {
		t.Fatalf("log not truncated: first index %d, version %d", first, s.Version())
	}
	want := viewOf(s)

	s = reopen(t, s)
	sameView(t, "restored from snapshot", viewOf(s), want)

	// Entries after the snapshot are replayed on top of it.
	populate(t, s, "new-")
	want = viewOf(s)
	s = reopen(t, s)
	sameView(t, "snapshot plus log", viewOf(s), want)
	if len(want.Topics) != 4 {
		t.Errorf("topics = %d, want 4", len(want.Topics))
	}
}

// With a real TCP transport on a random port, the node's address changes on
// every start; the single voter must still elect itself and record the new one.
func TestRestartTCP(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, Config{Dir: dir, RaftAddr: "127.0.0.1:0"})
	mustCreate(t, s, TopicSpec{Name: "t", Partitions: 2})
	want := viewOf(s)
	s = reopen(t, s)
	got := viewOf(s)
	if got.Version < want.Version || !reflect.DeepEqual(got.Topics, want.Topics) || got.ClusterID != want.ClusterID {
		t.Errorf("after restart %+v, want %+v", got, want)
	}
	cfg := s.raft.GetConfiguration()
	if err := cfg.Error(); err != nil {
		t.Fatal(err)
	}
	servers := cfg.Configuration().Servers
	if len(servers) != 1 || servers[0].Address != s.addr {
		t.Errorf("raft servers = %+v, want one at %s", servers, s.addr)
	}
}

func TestOpenLockedDir(t *testing.T) {
	dir := t.TempDir()
	openStore(t, Config{Dir: dir})
	if s, err := Open(Config{Dir: dir, NodeID: 1, Logger: quiet}); err == nil {
		s.Close()
		t.Fatal("second Open of a directory in use succeeded")
	}
}

func TestManyTopicsSurviveRestart(t *testing.T) {
	s := openStore(t, Config{Dir: t.TempDir()})
	specs := make([]TopicSpec, 500)
	for i := range specs {
		specs[i] = TopicSpec{Name: fmt.Sprintf("t%04d", i), Partitions: int32(1 + i%7)}
	}
	mustCreate(t, s, specs...)
	want := viewOf(s)
	s = reopen(t, s)
	sameView(t, "after restart", viewOf(s), want)
}
