package cluster

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// GossipConfig configures a node's gossip.
type GossipConfig struct {
	BindAddr string   // host:port for memberlist's TCP and UDP, e.g. 127.0.0.1:7946
	Join     []string // gossip addresses of existing nodes; empty starts alone
	Self     Member   // this node's metadata (Addr and State are filled in)
	Logger   *slog.Logger
	// ProbeInterval is how often a member probes another (400 ms when 0);
	// a failed member is declared dead about three intervals later.
	ProbeInterval time.Duration
}

// joinRetry is how often a node whose --join peers were all unreachable tries
// again (they may still be starting).
const joinRetry = time.Second

// Gossip is this node's view of the membership.
type Gossip struct {
	ml   *memberlist.Memberlist
	log  *slog.Logger
	name string
	join []string

	mu       sync.Mutex
	self     Member
	members  map[string]Member // by memberlist name, this node included
	starting bool              // a name conflict now means this process is the duplicate
	conflict error
	fatal    chan error // receives a duplicate-id error found after start
	changed  chan struct{}
	watchers []chan struct{} // Watch's channels
	stop     chan struct{}
	done     chan struct{}
}

// StartGossip binds the gossip listener and joins the cluster. It fails when
// another live process already holds this node id. If no --join peer answers
// yet, it keeps trying in the background.
func StartGossip(cfg GossipConfig) (*Gossip, error) {
	host, portStr, err := net.SplitHostPort(cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("gossip address %q: %w", cfg.BindAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("gossip port %q: %w", portStr, err)
	}
	if host, err = resolveHost(host); err != nil {
		return nil, fmt.Errorf("gossip address %q: %w", cfg.BindAddr, err)
	}
	g := &Gossip{
		log: cfg.Logger, name: nodeName(cfg.Self.ID), join: cfg.Join, self: cfg.Self,
		members: map[string]Member{}, starting: true,
		fatal: make(chan error, 1), changed: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	g.self.Addr, g.self.State = cfg.BindAddr, StateAlive
	mc := memberlist.DefaultLocalConfig()
	mc.Name = g.name
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertiseAddr, mc.AdvertisePort = host, port
	mc.Delegate = (*gossipDelegate)(g)
	mc.Events = (*gossipEvents)(g)
	mc.Conflict = (*gossipEvents)(g)
	mc.Logger = newMemberlistLogger(g.log)
	// Failure detection within about 1.2 s on a LAN (the local defaults
	// take 4-5 s): leader failover waits for it.
	mc.ProbeInterval = cmp.Or(cfg.ProbeInterval, 400*time.Millisecond)
	mc.ProbeTimeout = min(mc.ProbeTimeout, mc.ProbeInterval/2)
	mc.SuspicionMult = 2
	if g.ml, err = memberlist.Create(mc); err != nil {
		return nil, fmt.Errorf("gossip on %s: %w", cfg.BindAddr, err)
	}
	joined := len(cfg.Join) == 0 || g.tryJoin()
	g.mu.Lock()
	err, g.starting = g.conflict, false
	g.mu.Unlock()
	if err != nil {
		_ = g.ml.Shutdown()
		return nil, err
	}
	go g.retryJoin(joined)
	return g, nil
}

// tryJoin contacts the --join peers once and reports whether any answered.
func (g *Gossip) tryJoin() bool {
	n, err := g.ml.Join(g.join)
	if n == 0 {
		g.log.Warn("gossip join: no peer answered yet", "peers", g.join, "err", err)
		return false
	}
	g.log.Info("gossip joined", "peers", g.join, "contacted", n)
	return true
}

func (g *Gossip) retryJoin(joined bool) {
	defer close(g.done)
	t := time.NewTicker(joinRetry)
	defer t.Stop()
	for !joined {
		select {
		case <-g.stop:
			return
		case <-t.C:
			g.mu.Lock()
			g.starting = true // a conflict found by this join is ours
			g.mu.Unlock()
			joined = g.tryJoin()
			g.mu.Lock()
			err := g.conflict
			g.starting = false
			g.mu.Unlock()
			if err != nil {
				g.fatal <- err
				return
			}
		}
	}
	g.reconnect(t.C)
}

// reconnect keeps contacting the members gossip has declared dead (and the
// --join peers while no other member is alive), as Serf's reconnect does:
// after a network partition heals, memberlist alone never exchanges state
// with a member it believes dead, so both sides could go on seeing each
// other dead. A join with a live node refutes the death on both sides.
func (g *Gossip) reconnect(tick <-chan time.Time) {
	for {
		select {
		case <-g.stop:
			return
		case <-tick:
		}
		var addrs []string
		alive := 0
		g.mu.Lock()
		for _, m := range g.members {
			switch {
			case m.ID == g.self.ID:
			case m.State == StateDead:
				addrs = append(addrs, m.Addr)
			case m.State == StateAlive:
				alive++
			}
		}
		g.mu.Unlock()
		if alive == 0 {
			addrs = append(addrs, g.join...)
		}
		if len(addrs) == 0 {
			continue
		}
		if n, err := g.ml.Join(addrs); n > 0 {
			g.log.Debug("gossip reconnect", "peers", addrs, "contacted", n)
		} else if err != nil {
			g.log.Debug("gossip reconnect", "peers", addrs, "err", err)
		}
	}
}

// Fatal receives an error if, after start, this process turns out to hold a
// node id another live process already has.
func (g *Gossip) Fatal() <-chan error { return g.fatal }

// Changed is signalled (without blocking the sender) when membership or a
// member's metadata changes.
func (g *Gossip) Changed() <-chan struct{} { return g.changed }

// Members returns every node gossip has seen, this one included, by id.
func (g *Gossip) Members() []Member {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Member, 0, len(g.members)+1)
	seenSelf := false
	for _, m := range g.members {
		seenSelf = seenSelf || m.ID == g.self.ID
		out = append(out, m)
	}
	if !seenSelf {
		out = append(out, g.self)
	}
	slices.SortFunc(out, func(a, b Member) int { return int(a.ID) - int(b.ID) })
	return out
}

// Self is this node's own metadata.
func (g *Gossip) Self() Member {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.self
}

// SetBootstrapped marks this node as having raft state and gossips it.
func (g *Gossip) SetBootstrapped() error {
	g.mu.Lock()
	if g.self.Bootstrapped {
		g.mu.Unlock()
		return nil
	}
	g.self.Bootstrapped = true
	g.mu.Unlock()
	if err := g.ml.UpdateNode(time.Second); err != nil {
		return fmt.Errorf("gossip metadata update: %w", err)
	}
	return nil
}

// Drain gossips that this node is about to leave, while it stays a
// member: the controller moves its partition leaderships away first
// (controlled shutdown).
func (g *Gossip) Drain(timeout time.Duration) error {
	g.mu.Lock()
	g.self.Leaving = true
	g.mu.Unlock()
	if err := g.ml.UpdateNode(timeout); err != nil {
		return fmt.Errorf("gossip drain: %w", err)
	}
	return nil
}

// Leave announces a graceful departure (the leader then removes this node
// from the quorum) and stops gossip.
func (g *Gossip) Leave(timeout time.Duration) error {
	close(g.stop)
	<-g.done
	g.mu.Lock()
	g.self.Leaving = true
	g.mu.Unlock()
	var err error
	if uerr := g.ml.UpdateNode(timeout); uerr != nil {
		err = fmt.Errorf("gossip leave intent: %w", uerr)
	}
	if lerr := g.ml.Leave(timeout); lerr != nil {
		err = errors.Join(err, fmt.Errorf("gossip leave: %w", lerr))
	}
	if serr := g.ml.Shutdown(); serr != nil {
		err = errors.Join(err, fmt.Errorf("gossip shutdown: %w", serr))
	}
	return err
}

func (g *Gossip) notify() {
	select {
	case g.changed <- struct{}{}:
	default:
	}
	g.mu.Lock()
	for _, w := range g.watchers {
		select {
		case w <- struct{}{}:
		default:
		}
	}
	g.mu.Unlock()
}

// Watch returns a channel signalled (without blocking the sender) on every
// change Changed reports, for a second consumer of membership changes.
func (g *Gossip) Watch() <-chan struct{} {
	w := make(chan struct{}, 1)
	g.mu.Lock()
	g.watchers = append(g.watchers, w)
	g.mu.Unlock()
	return w
}

// update records a node's state from a memberlist event.
func (g *Gossip) update(n *memberlist.Node, st State) {
	m, err := decodeMeta(n.Name, n.Meta)
	if err != nil {
		g.log.Warn("gossip: ignoring member", "member", n.Name, "err", err)
		return
	}
	m.Addr = net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	m.State = st
	if st == StateDead && m.Leaving {
		m.State = StateLeft
	}
	g.mu.Lock()
	old, had := g.members[n.Name]
	g.members[n.Name] = m
	g.mu.Unlock()
	if !had || old.State != m.State {
		g.log.Info("gossip member", "member", m.ID, "addr", m.Addr, "state", string(m.State))
	}
	g.notify()
}

// resolveHost turns a host name (a container's name, say) into the IP
// memberlist binds and advertises; IPs pass through. An IPv4 address is
// preferred, as peers usually reach each other over it.
func resolveHost(host string) (string, error) {
	if host == "" || net.ParseIP(host) != nil {
		return host, nil
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", host, err)
	}
	for _, ip := range ips {
		if ip.To4() != nil {
			return ip.String(), nil
		}
	}
	if len(ips) == 0 {
		return "", fmt.Errorf("resolve %s: no address", host)
	}
	return ips[0].String(), nil
}
