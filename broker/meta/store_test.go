package meta

import (
	"errors"
	"log/slog"
	"maps"
	"slices"
	"testing"
	"time"
)

// quiet discards raft's warnings in tests unless -v shows them useful.
var quiet = slog.New(slog.DiscardHandler)

func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	if cfg.NodeID == 0 {
		cfg.NodeID = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	start := time.Now()
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Logf("Open took %s", time.Since(start))
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustCreate(t testing.TB, s *Store, specs ...TopicSpec) {
	t.Helper()
	for i, err := range s.CreateTopics(specs) {
		if err != nil {
			t.Fatalf("create %s: %v", specs[i].Name, err)
		}
	}
}

func TestOpenInMemory(t *testing.T) {
	s := openStore(t, Config{NodeID: 3})
	if got := s.NodeID(); got != 3 {
		t.Errorf("NodeID = %d", got)
	}
	id := s.ClusterID()
	if len(id) != 22 {
		t.Errorf("ClusterID %q: want 22 chars", id)
	}
	var u uuid
	if err := u.UnmarshalText([]byte(id)); err != nil {
		t.Errorf("ClusterID %q: %v", id, err)
	}
	if s.Version() == 0 {
		t.Error("Version = 0 after the cluster id was set")
	}
	if ts := s.Topics(); len(ts) != 0 {
		t.Errorf("Topics = %v", ts)
	}
}

func TestCreateTopics(t *testing.T) {
	s := openStore(t, Config{NodeID: 7})
	errs := s.CreateTopics([]TopicSpec{
		{Name: "b", Partitions: 3, ReplicationFactor: 1, Configs: map[string]string{"cleanup.policy": "compact"}},
		{Name: "a", Partitions: 1, Internal: true},
		{Name: "b", Partitions: 2},    // exists by the time it applies
		{Name: "zero", Partitions: 0}, // refused before the log
	})
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("errs = %v", errs)
	}
	if !errors.Is(errs[2], ErrTopicExists) {
		t.Errorf("duplicate in batch: %v", errs[2])
	}
	if !errors.Is(errs[3], ErrInvalidPartitions) {
		t.Errorf("zero partitions: %v", errs[3])
	}
	if errs := s.CreateTopics([]TopicSpec{{Name: "a", Partitions: 1}}); !errors.Is(errs[0], ErrTopicExists) {
		t.Errorf("existing: %v", errs)
	}
	if _, ok := s.Topic("zero"); ok {
		t.Error("topic with zero partitions was created")
	}

	b, ok := s.Topic("b")
	if !ok {
		t.Fatal("b missing")
	}
	if len(b.Partitions) != 3 || b.Internal {
		t.Fatalf("b = %+v", b)
	}
	for i, p := range b.Partitions {
		want := Partition{Leader: 7, LeaderEpoch: 0, Replicas: []int32{7}, ISR: []int32{7}}
		if p.Leader != want.Leader || p.LeaderEpoch != 0 || !slices.Equal(p.Replicas, want.Replicas) || !slices.Equal(p.ISR, want.ISR) {
			t.Errorf("partition %d = %+v", i, p)
		}
	}
	if !maps.Equal(b.Configs, map[string]string{"cleanup.policy": "compact"}) {
		t.Errorf("configs = %v", b.Configs)
	}
	a, _ := s.Topic("a")
	if !a.Internal || a.Configs == nil {
		t.Errorf("a = %+v", a)
	}
	if a.ID == b.ID || a.ID == ([16]byte{}) {
		t.Errorf("ids %x %x", a.ID, b.ID)
	}
	byID, ok := s.TopicByID(b.ID)
	if !ok || byID.Name != "b" {
		t.Errorf("TopicByID = %+v, %v", byID, ok)
	}
	if _, ok := s.TopicByID([16]byte{1}); ok {
		t.Error("TopicByID found an unknown id")
	}
	var names []string
	for _, t := range s.Topics() {
		names = append(names, t.Name)
	}
	if !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("Topics = %v", names)
	}
}

func TestCopiesAreDeep(t *testing.T) {
	s := openStore(t, Config{})
	mustCreate(t, s, TopicSpec{Name: "t", Partitions: 2, Configs: map[string]string{"k": "v"}})
	c, _ := s.Topic("t")
	c.Partitions[0].Replicas[0] = 99
	c.Partitions[0].ISR = append(c.Partitions[0].ISR, 98)
	c.Partitions[1].Leader = 97
	c.Configs["k"] = "changed"
	c.Partitions = append(c.Partitions, Partition{})
	again, _ := s.Topic("t")
	if again.Partitions[0].Replicas[0] != 1 || len(again.Partitions[0].ISR) != 1 ||
		again.Partitions[1].Leader != 1 || again.Configs["k"] != "v" || len(again.Partitions) != 2 {
		t.Errorf("stored topic changed through a copy: %+v", again)
	}
	// Appending to one partition's slice must not spill into its neighbour.
	c2, _ := s.Topic("t")
	_ = append(c2.Partitions[0].Replicas, 55)
	if c2.Partitions[0].ISR[0] != 1 {
		t.Error("replica and ISR slices overlap")
	}
}

func TestDeleteTopics(t *testing.T) {
	s := openStore(t, Config{})
	mustCreate(t, s, TopicSpec{Name: "a", Partitions: 1}, TopicSpec{Name: "b", Partitions: 1})
	a, _ := s.Topic("a")
	errs := s.DeleteTopics([]string{"a", "nope", "a"})
	if errs[0] != nil || !errors.Is(errs[1], ErrUnknownTopic) || !errors.Is(errs[2], ErrUnknownTopic) {
		t.Fatalf("errs = %v", errs)
	}
	if _, ok := s.Topic("a"); ok {
		t.Error("a still there")
	}
	if _, ok := s.TopicByID(a.ID); ok {
		t.Error("a still found by id")
	}
	if _, ok := s.Topic("b"); !ok {
		t.Error("b gone")
	}
	// A re-created topic gets a new id.
	mustCreate(t, s, TopicSpec{Name: "a", Partitions: 1})
	if a2, _ := s.Topic("a"); a2.ID == a.ID {
		t.Error("re-created topic kept its id")
	}
	if errs := s.DeleteTopics(nil); len(errs) != 0 {
		t.Errorf("DeleteTopics(nil) = %v", errs)
	}
}

func TestCreatePartitions(t *testing.T) {
	s := openStore(t, Config{NodeID: 2})
	mustCreate(t, s, TopicSpec{Name: "t", Partitions: 2, Configs: map[string]string{"k": "v"}})
	before, _ := s.Topic("t")
	if err := s.CreatePartitions("t", 5, nil, nil); err != nil {
		t.Fatal(err)
	}
	after, _ := s.Topic("t")
	if len(after.Partitions) != 5 || after.ID != before.ID || after.Configs["k"] != "v" {
		t.Fatalf("after = %+v", after)
	}
	for i, p := range after.Partitions {
		if p.Leader != 2 || !slices.Equal(p.Replicas, []int32{2}) || !slices.Equal(p.ISR, []int32{2}) {
			t.Errorf("partition %d = %+v", i, p)
		}
	}
	for _, total := range []int32{5, 4, 0, -1} {
		if err := s.CreatePartitions("t", total, nil, nil); !errors.Is(err, ErrInvalidPartitions) {
			t.Errorf("CreatePartitions(%d) = %v", total, err)
		}
	}
	if err := s.CreatePartitions("nope", 3, nil, nil); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("unknown topic: %v", err)
	}
}

func TestSetConfigs(t *testing.T) {
	s := openStore(t, Config{})
	mustCreate(t, s, TopicSpec{Name: "t", Partitions: 1, Configs: map[string]string{"a": "1", "b": "2"}})
	check := func(want map[string]string) {
		t.Helper()
		got, _ := s.Topic("t")
		if !maps.Equal(got.Configs, want) || got.Configs == nil {
			t.Errorf("configs = %v, want %v", got.Configs, want)
		}
	}
	if err := s.SetConfigs("t", map[string]string{"b": "3", "c": "4"}, []string{"a"}, false); err != nil {
		t.Fatal(err)
	}
	check(map[string]string{"b": "3", "c": "4"})
	if err := s.SetConfigs("t", map[string]string{"x": "9"}, nil, true); err != nil {
		t.Fatal(err)
	}
	check(map[string]string{"x": "9"})
	if err := s.SetConfigs("t", nil, []string{"x", "missing"}, false); err != nil {
		t.Fatal(err)
	}
	check(map[string]string{})
	if err := s.SetConfigs("t", nil, nil, true); err != nil {
		t.Fatal(err)
	}
	check(map[string]string{})
	if err := s.SetConfigs("nope", map[string]string{"a": "1"}, nil, false); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("unknown topic: %v", err)
	}
}

func TestVersion(t *testing.T) {
	s := openStore(t, Config{})
	v0 := s.Version()
	mustCreate(t, s, TopicSpec{Name: "t", Partitions: 1})
	v1 := s.Version()
	if v1 <= v0 {
		t.Fatalf("Version %d -> %d after a create", v0, v1)
	}
	s.CreateTopics([]TopicSpec{{Name: "t", Partitions: 1}}) // fails: no change
	if err := s.CreatePartitions("t", 1, nil, nil); err == nil {
		t.Fatal("shrink accepted")
	}
	if v := s.Version(); v != v1 {
		t.Errorf("Version moved %d -> %d without a change", v1, v)
	}
}

func TestClosedStore(t *testing.T) {
	s := openStore(t, Config{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if errs := s.CreateTopics([]TopicSpec{{Name: "t", Partitions: 1}}); errs[0] == nil {
		t.Error("create on a closed store succeeded")
	}
	if err := s.SetConfigs("t", nil, nil, true); err == nil {
		t.Error("set configs on a closed store succeeded")
	}
}
