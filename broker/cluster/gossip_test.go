package cluster

import (
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

var quiet = slog.New(slog.DiscardHandler)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startNode(t *testing.T, id int32, join ...string) (*Gossip, error) {
	t.Helper()
	self := Member{ID: id, Kafka: "127.0.0.1:9092", Raft: "127.0.0.1:7947", Roles: []string{RoleBroker}}
	return StartGossip(GossipConfig{BindAddr: freeAddr(t), Join: join, Self: self, Logger: quiet})
}

// waitMember waits up to 10 s for g to see member id in state st.
func waitMember(t *testing.T, g *Gossip, id int32, st State) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range g.Members() {
			if m.ID == id && m.State == st {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("member %d not %s: %+v", id, st, g.Members())
}

func TestGossipJoinLeaveAndDuplicateID(t *testing.T) {
	a, err := startNode(t, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Leave(time.Second)
	b, err := startNode(t, 2, a.Self().Addr)
	if err != nil {
		t.Fatal(err)
	}
	waitMember(t, a, 2, StateAlive)
	waitMember(t, b, 1, StateAlive)
	for _, m := range a.Members() {
		if m.ID == 2 && (m.Kafka != "127.0.0.1:9092" || m.Raft != "127.0.0.1:7947" || !m.Eligible()) {
			t.Fatalf("member 2's metadata did not travel: %+v", m)
		}
	}

	// A second process with node id 2 is refused while the first is alive.
	dup, err := startNode(t, 2, a.Self().Addr)
	if err == nil {
		dup.Leave(time.Second)
		t.Fatal("a second node with id 2 was allowed to join")
	}
	if !strings.Contains(err.Error(), "node id 2 is already used") {
		t.Fatalf("duplicate id error = %v", err)
	}

	// A graceful leave is seen as left, not dead: the leader removes it.
	if err := b.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	waitMember(t, a, 2, StateLeft)
}

func TestResolveHost(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"127.0.0.1", "127.0.0.1"},
		{"::1", "::1"},
		{"", ""},
		{"localhost", "127.0.0.1"},
	} {
		if got, err := resolveHost(tc.in); err != nil || got != tc.want {
			t.Errorf("resolveHost(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := resolveHost("no-such-host.invalid"); err == nil {
		t.Error("resolving an unknown host gave no error")
	}
}

// TestGossipCarriesIncarnation: a node restarted on the same address faster
// than failure detection is seen with its new incarnation, which is what
// gives its registration a new broker epoch.
func TestGossipCarriesIncarnation(t *testing.T) {
	a, err := startNode(t, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Leave(time.Second)
	addr := freeAddr(t)
	start := func(inc string) *Gossip {
		self := Member{ID: 2, Kafka: "127.0.0.1:9093", Raft: "127.0.0.1:7948", Roles: []string{RoleBroker}, Incarnation: inc}
		g, err := StartGossip(GossipConfig{BindAddr: addr, Join: []string{a.Self().Addr}, Self: self, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	waitInc := func(inc string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			for _, m := range a.Members() {
				if m.ID == 2 && m.Alive() && m.Incarnation == inc {
					return
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("member 2 not alive with incarnation %q: %+v", inc, a.Members())
	}
	b := start("first")
	waitInc("first")
	// A crash: no leave message, the process just stops.
	close(b.stop)
	<-b.done
	if err := b.ml.Shutdown(); err != nil {
		t.Fatal(err)
	}
	b2 := start("second")
	defer b2.Leave(time.Second)
	waitInc("second")
}

func TestBrokerOfCarriesIncarnation(t *testing.T) {
	b, err := brokerOf(Member{ID: 3, Kafka: "h:9092", Roles: []string{RoleBroker}, Incarnation: "xyz"})
	if err != nil || b.Incarnation != "xyz" || b.Host != "h" || b.Port != 9092 {
		t.Fatalf("brokerOf = %+v, %v", b, err)
	}
	if a, b := NewIncarnation(), NewIncarnation(); len(a) != 22 || a == b {
		t.Errorf("incarnations %q %q: want 22 characters, different", a, b)
	}
}
