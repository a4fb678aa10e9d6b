package meta

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/hashicorp/raft"
)

// applyAt applies one command at a raft index and publishes the result.
func applyAt(t *testing.T, f *fsm, index uint64, typ string, body any) any {
	t.Helper()
	return f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: cmd(t, typ, body)})
}

func reg(id int32, host, inc string) registerBrokerCmd {
	return registerBrokerCmd{Broker: Broker{ID: id, Host: host, Port: 9092, Roles: []string{"broker"}, Incarnation: inc}}
}

func TestBrokerEpochs(t *testing.T) {
	f := newFSM(nil)
	broker := func(id int32) Broker { return f.cur.Load().brokers[id] }

	applyAt(t, f, 10, cmdRegisterBroker, reg(1, "h1", "inc-a"))
	if b := broker(1); b.Epoch != 10 || b.Fenced || b.Incarnation != "inc-a" {
		t.Fatalf("first registration: %+v, want epoch 10, unfenced", b)
	}

	// The same process registering the same data changes nothing.
	applyAt(t, f, 11, cmdRegisterBroker, reg(1, "h1", "inc-a"))
	if v := f.cur.Load().index; v != 10 {
		t.Errorf("equal re-registration changed the state (index %d)", v)
	}

	// The same process with a new address keeps its epoch.
	applyAt(t, f, 12, cmdRegisterBroker, reg(1, "h1b", "inc-a"))
	if b := broker(1); b.Epoch != 10 || b.Fenced || b.Host != "h1b" {
		t.Errorf("same incarnation, new host: %+v, want epoch 10", b)
	}

	// A proposer cannot choose the epoch or the fencing.
	forged := reg(2, "h2", "inc-x")
	forged.Broker.Epoch, forged.Broker.Fenced = 3, true
	applyAt(t, f, 13, cmdRegisterBroker, forged)
	if b := broker(2); b.Epoch != 13 || b.Fenced {
		t.Errorf("forged registration: %+v, want epoch 13, unfenced", b)
	}

	// A restart: new incarnation, new epoch, fenced.
	applyAt(t, f, 20, cmdRegisterBroker, reg(1, "h1b", "inc-b"))
	if b := broker(1); b.Epoch != 20 || !b.Fenced {
		t.Errorf("new incarnation: %+v, want epoch 20, fenced", b)
	}
	if b := broker(2); b.Epoch != 13 {
		t.Errorf("another broker's epoch moved: %+v", b)
	}
}

func TestUnfenceBroker(t *testing.T) {
	f := newFSM(nil)
	applyAt(t, f, 1, cmdRegisterBroker, reg(1, "h1", "a"))
	applyAt(t, f, 2, cmdRegisterBroker, reg(2, "h2", "a"))
	applyAt(t, f, 3, cmdCreateTopics, createTopicsCmd{Topics: []newTopic{
		{Name: "t", ID: uuid{0: 1, 6: 0x40}, Replicas: [][]int32{{1, 2}, {2, 1}}},
	}})
	applyAt(t, f, 4, cmdRegisterBroker, reg(1, "h1", "b")) // broker 1 restarted
	if b := f.cur.Load().brokers[1]; !b.Fenced || b.Epoch != 4 {
		t.Fatalf("restarted broker %+v, want fenced at epoch 4", b)
	}

	if err, _ := applyAt(t, f, 5, cmdUnfenceBroker, unfenceBrokerCmd{ID: 1, Epoch: 1}).(error); !errors.Is(err, ErrStaleBrokerEpoch) {
		t.Errorf("unfence at the old epoch: %v, want ErrStaleBrokerEpoch", err)
	}
	if err, _ := applyAt(t, f, 6, cmdUnfenceBroker, unfenceBrokerCmd{ID: 1, Epoch: 4}).(error); !errors.Is(err, ErrBrokerInUse) {
		t.Errorf("unfence while leading t/0: %v, want ErrBrokerInUse", err)
	}

	// The controller's election: 2 leads t/0, and 1 leaves both ISRs.
	applyAt(t, f, 7, cmdChangePartitions, changePartitionsCmd{Changes: []PartitionChange{
		{Topic: "t", Partition: 0, Leader: 2, ISR: []int32{2}},
		{Topic: "t", Partition: 1, Leader: 2, ISR: []int32{2}},
	}})
	if !f.cur.Load().fencedOut(1) || f.cur.Load().fencedOut(2) {
		t.Fatal("fencedOut disagrees with the partitions")
	}
	if resp := applyAt(t, f, 8, cmdUnfenceBroker, unfenceBrokerCmd{ID: 1, Epoch: 4}); resp != nil {
		t.Fatalf("unfence: %v", resp)
	}
	if b := f.cur.Load().brokers[1]; b.Fenced || b.Epoch != 4 {
		t.Errorf("after unfence: %+v", b)
	}
}

func TestFencedOutKeepsOfflineISR(t *testing.T) {
	f := newFSM(nil)
	applyAt(t, f, 1, cmdCreateTopics, createTopicsCmd{Topics: []newTopic{
		{Name: "t", ID: uuid{0: 1, 6: 0x40}, Replicas: [][]int32{{1}}},
	}})
	if f.cur.Load().fencedOut(1) {
		t.Fatal("the leader of t/0 is fenced out")
	}
	// Offline with broker 1 as its last ISR member: 1 may lead it again.
	applyAt(t, f, 2, cmdChangePartitions, changePartitionsCmd{Changes: []PartitionChange{
		{Topic: "t", Partition: 0, Leader: -1, ISR: []int32{1}},
	}})
	if !f.cur.Load().fencedOut(1) {
		t.Error("the last ISR member of an offline partition is not fenced out")
	}
}

func TestSnapshotKeepsEpochs(t *testing.T) {
	f := newFSM(nil)
	applyAt(t, f, 5, cmdRegisterBroker, reg(1, "h1", "a"))
	applyAt(t, f, 9, cmdRegisterBroker, reg(1, "h1", "b"))
	applyAt(t, f, 11, cmdRegisterBroker, reg(2, "h2", "c"))
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(f.cur.Load().doc()); err != nil {
		t.Fatal(err)
	}
	g := newFSM(nil)
	if err := g.Restore(io.NopCloser(&buf)); err != nil {
		t.Fatal(err)
	}
	want := map[int32]Broker{
		1: {ID: 1, Host: "h1", Port: 9092, Roles: []string{"broker"}, Incarnation: "b", Epoch: 9, Fenced: true},
		2: {ID: 2, Host: "h2", Port: 9092, Roles: []string{"broker"}, Incarnation: "c", Epoch: 11},
	}
	for id, w := range want {
		if got := g.cur.Load().brokers[id]; !got.equal(w) || got.Epoch != w.Epoch || got.Fenced != w.Fenced {
			t.Errorf("broker %d restored as %+v, want %+v", id, got, w)
		}
	}
	// The restored state goes on like the original: the same process
	// re-registering is a no-op.
	applyAt(t, g, 12, cmdRegisterBroker, reg(2, "h2", "c"))
	if g.cur.Load().brokers[2].Epoch != 11 || g.cur.Load().index != 11 {
		t.Error("re-registration after restore changed the epoch")
	}
}

func TestSnapshotWithoutEpochs(t *testing.T) {
	// A snapshot written before broker epochs.
	old := `{"format":1,"cluster_id":"c","index":40,"topics":[],` +
		`"brokers":[{"id":1,"host":"h1","port":9092,"roles":["broker"]}]}`
	f := newFSM(nil)
	if err := f.Restore(io.NopCloser(bytes.NewBufferString(old))); err != nil {
		t.Fatal(err)
	}
	b := f.cur.Load().brokers[1]
	if b.Epoch != 0 || b.Fenced || b.Incarnation != "" {
		t.Fatalf("old registration restored as %+v, want epoch 0 (unknown), unfenced", b)
	}
	// Its next process registers with an incarnation: a real epoch, fenced
	// until the controller has taken the old process's roles away.
	applyAt(t, f, 41, cmdRegisterBroker, reg(1, "h1", "new"))
	if b := f.cur.Load().brokers[1]; b.Epoch != 41 || !b.Fenced {
		t.Errorf("after re-registration %+v, want epoch 41, fenced", b)
	}

	bad := `{"format":1,"cluster_id":"c","index":1,"topics":[],"brokers":[{"id":1,"host":"h","port":1,"epoch":-3}]}`
	if err := newFSM(nil).Restore(io.NopCloser(bytes.NewBufferString(bad))); err == nil {
		t.Error("a negative broker epoch was restored")
	}
}

func TestStoreBrokerEpoch(t *testing.T) {
	s := openStore(t, Config{NodeID: 1})
	b := Broker{ID: 1, Host: "h", Port: 9092, Incarnation: "one"}
	if err := s.RegisterBroker(b); err != nil {
		t.Fatal(err)
	}
	got, ok := s.Broker(1)
	if !ok || got.Epoch <= 0 || got.Epoch != int64(s.Version()) || got.Fenced {
		t.Fatalf("registered %+v (version %d), want epoch = its raft index", got, s.Version())
	}
	v := s.Version()
	if err := s.RegisterBroker(b); err != nil || s.Version() != v {
		t.Errorf("equal re-registration: err %v, version %d -> %d", err, v, s.Version())
	}
	b.Incarnation = "two"
	if err := s.RegisterBroker(b); err != nil {
		t.Fatal(err)
	}
	again, _ := s.Broker(1)
	if again.Epoch <= got.Epoch || !again.Fenced {
		t.Fatalf("restart: %+v, want a higher epoch than %d, fenced", again, got.Epoch)
	}
	if !s.FencedOut(1) {
		t.Fatal("a broker with no partitions is not fenced out")
	}
	if err := s.UnfenceBroker(1, got.Epoch); !errors.Is(err, ErrStaleBrokerEpoch) {
		t.Errorf("unfence at the old epoch: %v", err)
	}
	if err := s.UnfenceBroker(1, again.Epoch); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.Broker(1); b.Fenced {
		t.Error("still fenced")
	}
}
