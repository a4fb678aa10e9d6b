package broker

import (
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/broker/cluster"
	"github.com/sluice-io/sluice/broker/meta"
)

// epochBroker is a broker with an in-memory metadata store it leads and a
// gossip member of incarnation "now", but no quorum loop: the test writes
// the registrations itself.
func epochBroker(t *testing.T) *Broker {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	m, err := meta.Open(meta.Config{NodeID: 1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	g, err := cluster.StartGossip(cluster.GossipConfig{BindAddr: addr, Logger: quiet,
		Self: cluster.Member{ID: 1, Kafka: "127.0.0.1:9092", Roles: []string{cluster.RoleBroker}, Incarnation: "now"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Leave(time.Second) })
	return &Broker{cfg: Config{NodeID: 1}, meta: m, gossip: g, logger: quiet, closing: make(chan struct{})}
}

// TestNoAlterPartitionBeforeRegistration: a node learns its broker epoch
// from the registration of its own incarnation; before that it proposes no
// ISR change, and until it is unfenced it takes no partition role.
func TestNoAlterPartitionBeforeRegistration(t *testing.T) {
	b := epochBroker(t)
	p := &partition{t: &topic{name: "t"}}
	r := &role{self: 1, leader: 1, replicas: []int32{1, 2}, isr: []int32{1}}
	register := func(inc string) {
		t.Helper()
		if err := b.meta.RegisterBroker(meta.Broker{ID: 1, Host: "127.0.0.1", Port: 9092, Incarnation: inc}); err != nil {
			t.Fatal(err)
		}
	}

	if _, ok := b.ownBrokerEpoch(); ok {
		t.Fatal("an epoch before any registration")
	}
	if code := b.alterPartition(p, r, []int32{1, 2}); code != kerr.StaleBrokerEpoch.Code {
		t.Errorf("alterPartition before registration: code %d, want it held back (STALE_BROKER_EPOCH)", code)
	}

	register("before") // the previous process's registration
	if _, ok := b.ownBrokerEpoch(); ok || b.unfenced() {
		t.Fatal("the previous incarnation's registration taken as this one's")
	}
	if code := b.alterPartition(p, r, []int32{1, 2}); code != kerr.StaleBrokerEpoch.Code {
		t.Errorf("alterPartition on the previous registration: code %d", code)
	}

	register("now")
	epoch, ok := b.ownBrokerEpoch()
	reg, _ := b.meta.Broker(1)
	if !ok || epoch != reg.Epoch || !reg.Fenced {
		t.Fatalf("own epoch %d (%v), registration %+v: want the new, fenced registration's epoch", epoch, ok, reg)
	}
	if b.unfenced() {
		t.Error("a fenced node would take partition roles")
	}
	if alive := b.eligibleBrokers(); alive[1] {
		t.Error("a fenced broker is eligible to lead and be in sync")
	}
	if b.brokerEpoch(1) != epoch || b.brokerEpoch(2) != -1 {
		t.Errorf("brokerEpoch: self %d, unregistered 2 %d", b.brokerEpoch(1), b.brokerEpoch(2))
	}
	if !b.staleBrokerEpoch(1, epoch-1) || b.staleBrokerEpoch(1, epoch) || !b.staleBrokerEpoch(1, -1) || !b.staleBrokerEpoch(2, -1) {
		t.Error("staleBrokerEpoch disagrees with the registrations")
	}
	// A broker of a version before epochs registers without an incarnation
	// and sends -1: taken, while a cluster is upgraded; anything else is not.
	if err := b.meta.RegisterBroker(meta.Broker{ID: 3, Host: "h3", Port: 9092}); err != nil {
		t.Fatal(err)
	}
	if r3, _ := b.meta.Broker(3); b.staleBrokerEpoch(3, -1) || !b.staleBrokerEpoch(3, r3.Epoch+1) {
		t.Error("an old-version broker's -1 refused, or a wrong epoch taken")
	}
	if err := b.meta.UnfenceBroker(1, epoch); err != nil {
		t.Fatal(err)
	}
	if !b.unfenced() {
		t.Error("still fenced after the controller unfenced it")
	}
	if alive := b.eligibleBrokers(); !alive[1] {
		t.Errorf("eligible brokers %v: the unfenced node is missing", alive)
	}
}

// TestRegistrationUnderOldController: a controller of a version before
// broker epochs registers brokers without an incarnation. A node of this
// version then runs as that version did (epoch -1, taking roles) instead of
// waiting for a registration that never comes; once an upgraded controller
// registers its incarnation, the usual rules apply.
func TestRegistrationUnderOldController(t *testing.T) {
	b := epochBroker(t) // node 1, also the controller
	if err := b.meta.RegisterBroker(meta.Broker{ID: 1, Host: "127.0.0.1", Port: 9092}); err != nil {
		t.Fatal(err)
	}
	if epoch, ok := b.ownBrokerEpoch(); !ok || epoch != -1 || !b.unfenced() {
		t.Fatalf("under an old controller: epoch %d (%v), unfenced %v; want -1, true, true", epoch, ok, b.unfenced())
	}
	if b.staleBrokerEpoch(1, -1) {
		t.Error("the controller refuses the -1 such a node sends")
	}
	// The upgraded controller registers this incarnation: a real epoch,
	// fenced like any registration that follows an earlier one.
	if err := b.meta.RegisterBroker(meta.Broker{ID: 1, Host: "127.0.0.1", Port: 9092, Incarnation: "now"}); err != nil {
		t.Fatal(err)
	}
	reg, _ := b.meta.Broker(1)
	if epoch, ok := b.ownBrokerEpoch(); !ok || epoch != reg.Epoch || epoch <= 0 || b.unfenced() {
		t.Errorf("after the upgraded registration: epoch %d (%v), unfenced %v; registration %+v", epoch, ok, b.unfenced(), reg)
	}
}
