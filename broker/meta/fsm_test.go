package meta

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/hashicorp/raft"
)

func cmd(t testing.TB, typ string, body any) []byte {
	t.Helper()
	b, err := encodeCommand(typ, body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sampleLog is a log touching every command type, including failing ones.
func sampleLog(t testing.TB) [][]byte {
	id := func(b byte) uuid { return uuid{0: b, 6: 0x40} }
	return [][]byte{
		cmd(t, cmdInitCluster, initClusterCmd{ClusterID: id(9).String()}),
		cmd(t, cmdCreateTopics, createTopicsCmd{Topics: []newTopic{
			{Name: "a", ID: id(1), Replicas: [][]int32{{1}, {1, 2}}, Configs: map[string]string{"k": "v"}},
			{Name: "b", ID: id(2), Replicas: [][]int32{{3}}, Internal: true},
			{Name: "a", ID: id(3), Replicas: [][]int32{{1}}},
		}}),
		cmd(t, cmdCreatePartitions, createPartitionsCmd{Name: "a", From: 2, Total: 4, Replicas: [][]int32{{1}, {2}}}),
		cmd(t, cmdSetConfigs, setConfigsCmd{Name: "b", Set: map[string]string{"x": "1"}, Delete: []string{"k"}}),
		cmd(t, cmdDeleteTopics, deleteTopicsCmd{Names: []string{"b", "zzz"}}),
		cmd(t, cmdInitCluster, initClusterCmd{ClusterID: "ignored-second-id"}),
	}
}

func replay(t testing.TB, entries [][]byte) (*fsm, []any) {
	f := newFSM(nil)
	var resps []any
	for i, e := range entries {
		resps = append(resps, f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: e}))
	}
	return f, resps
}

func TestApplyDeterministic(t *testing.T) {
	log := sampleLog(t)
	f1, r1 := replay(t, log)
	f2, r2 := replay(t, log)
	d1, _ := json.Marshal(f1.cur.Load().doc())
	d2, _ := json.Marshal(f2.cur.Load().doc())
	if !bytes.Equal(d1, d2) || fmt.Sprint(r1) != fmt.Sprint(r2) {
		t.Fatalf("two replays differ:\n%s\n%s", d1, d2)
	}
	st := f1.cur.Load()
	if st.clusterID != (uuid{0: 9, 6: 0x40}).String() {
		t.Errorf("cluster id = %q", st.clusterID)
	}
	if st.index != 5 {
		t.Errorf("index = %d, want 5 (the last entry changed nothing)", st.index)
	}
	a := st.byName["a"]
	if a == nil || len(a.Partitions) != 4 || a.Partitions[3].Leader != 2 || a.Partitions[1].Leader != 1 {
		t.Fatalf("a = %+v", a)
	}
	if st.byName["b"] != nil || len(st.byID) != 1 {
		t.Errorf("b not deleted: %+v", st.byID)
	}
	errs := r1[1].([]error)
	if errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], ErrTopicExists) {
		t.Errorf("create results %v", errs)
	}
	if errs := r1[4].([]error); errs[0] != nil || !errors.Is(errs[1], ErrUnknownTopic) {
		t.Errorf("delete results %v", errs)
	}
}

func TestApplyRejects(t *testing.T) {
	f, _ := replay(t, sampleLog(t))
	before := f.cur.Load()
	for name, data := range map[string][]byte{
		"not json":         []byte("{"),
		"unknown type":     []byte(`{"type":"launch_rockets","version":1,"body":{}}`),
		"future version":   []byte(`{"type":"create_topics","version":2,"body":{}}`),
		"bad body":         []byte(`{"type":"create_topics","version":1,"body":{"topics":7}}`),
		"short id":         []byte(`{"type":"create_topics","version":1,"body":{"topics":[{"name":"n","id":"AAA","replicas":[[1]]}]}}`),
		"partitions moved": cmd(t, cmdCreatePartitions, createPartitionsCmd{Name: "a", From: 2, Total: 5, Replicas: [][]int32{{1}, {1}, {1}}}),
		"empty replicas":   cmd(t, cmdCreatePartitions, createPartitionsCmd{Name: "a", From: 4, Total: 5, Replicas: [][]int32{{}}}),
		"huge total":       cmd(t, cmdCreatePartitions, createPartitionsCmd{Name: "a", From: 4, Total: 1 << 30}),
		"empty cluster id": cmd(t, cmdInitCluster, initClusterCmd{}),
	} {
		resp := f.Apply(&raft.Log{Index: 100, Type: raft.LogCommand, Data: data})
		if err, _ := resp.(error); err == nil {
			t.Errorf("%s: Apply = %v, want an error", name, resp)
		}
		if f.cur.Load() != before {
			t.Errorf("%s: state changed", name)
		}
	}
	// A batch entry failing every item changes nothing either.
	resp := f.Apply(&raft.Log{Index: 101, Type: raft.LogCommand, Data: cmd(t, cmdCreateTopics, createTopicsCmd{Topics: []newTopic{
		{Name: "", ID: uuid{1}, Replicas: [][]int32{{1}}},
		{Name: "z", Replicas: [][]int32{{1}}},
		{Name: "z", ID: uuid{1}},
		{Name: "z", ID: uuid{1}, Replicas: [][]int32{{1}, {}}},
		{Name: "z", ID: before.byName["a"].ID, Replicas: [][]int32{{1}}},
	}})})
	for i, err := range resp.([]error) {
		if err == nil {
			t.Errorf("item %d accepted", i)
		}
	}
	if f.cur.Load() != before {
		t.Error("state changed by a batch of failures")
	}
}

type bufSink struct{ bytes.Buffer }

func (*bufSink) ID() string    { return "test" }
func (*bufSink) Cancel() error { return nil }
func (*bufSink) Close() error  { return nil }

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func TestSnapshotRestore(t *testing.T) {
	f, _ := replay(t, sampleLog(t))
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink bufSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	notified := 0
	g := newFSM(func() { notified++ })
	if err := g.Restore(nopCloser{bytes.NewReader(sink.Bytes())}); err != nil {
		t.Fatal(err)
	}
	if notified != 1 {
		t.Errorf("Restore notified %d times", notified)
	}
	want, got := f.cur.Load(), g.cur.Load()
	if got.clusterID != want.clusterID || got.index != want.index || !reflect.DeepEqual(got.byName, want.byName) || !reflect.DeepEqual(got.byID, want.byID) {
		t.Errorf("restored %+v\nwant %+v", got, want)
	}

	for name, doc := range map[string]string{
		"garbage":      "nope",
		"format":       `{"format":2}`,
		"dup name":     `{"format":1,"topics":[{"name":"a","id":"AAAAAAAAAAAAAAAAAAAAAA","partitions":[{}]},{"name":"a","id":"AQAAAAAAAAAAAAAAAAAAAA","partitions":[{}]}]}`,
		"no partition": `{"format":1,"topics":[{"name":"a","id":"AAAAAAAAAAAAAAAAAAAAAA"}]}`,
	} {
		if err := newFSM(nil).Restore(nopCloser{bytes.NewReader([]byte(doc))}); err == nil {
			t.Errorf("%s: Restore accepted it", name)
		}
	}
}

// checkInvariants fails if a state breaks what readers rely on.
func checkInvariants(t *testing.T, s *state) {
	if len(s.byName) != len(s.byID) {
		t.Fatalf("%d names, %d ids", len(s.byName), len(s.byID))
	}
	for name, tp := range s.byName {
		if tp.Name != name || s.byID[tp.ID] != tp {
			t.Fatalf("topic %q indexed inconsistently", name)
		}
		if name == "" || tp.Configs == nil || len(tp.Partitions) == 0 {
			t.Fatalf("topic %+v", tp)
		}
		for _, p := range tp.Partitions {
			if len(p.Replicas) == 0 || p.Leader != p.Replicas[0] {
				t.Fatalf("topic %q partition %+v", name, p)
			}
		}
	}
}

// FuzzApply feeds arbitrary entries to the state machine, which must neither
// panic nor break its invariants. It calls apply, not fsm.Apply, so that a
// panic is not hidden by Apply's recover.
func FuzzApply(f *testing.F) {
	for _, e := range sampleLog(f) {
		f.Add(e)
	}
	f.Add([]byte(`{"type":"create_partitions","version":1,"body":{"name":"a","from":4,"total":-2147483648}}`))
	f.Add([]byte(`{"type":"set_configs","version":1,"body":{"name":"a","replace":true,"delete":["k"]}}`))
	f.Add([]byte(`null`))
	base, _ := replay(f, sampleLog(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		cur := base.cur.Load()
		next, resp := apply(cur, data, 1000)
		if next == nil {
			checkInvariants(t, cur)
			return
		}
		if next.index != 1000 {
			t.Fatalf("changed state has index %d", next.index)
		}
		checkInvariants(t, next)
		if resp == nil {
			return
		}
		if _, ok := resp.(error); ok {
			t.Fatalf("state changed by a failing command: %v", resp)
		}
	})
}
