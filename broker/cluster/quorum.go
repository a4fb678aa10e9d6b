package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/sluice-io/sluice/broker/meta"
)

// Store is what the quorum needs of the metadata store (*meta.Store).
type Store interface {
	HadState() bool
	BootstrapVoters([]meta.Server) error
	IsLeader() bool
	Servers() ([]meta.Server, error)
	AddServer(meta.Server) error
	RemoveServer(id int32) error
	EnsureClusterID() error
	RegisterBroker(meta.Broker) error
	Broker(id int32) (meta.Broker, bool)
}

// Membership is what the quorum needs of gossip (*Gossip).
type Membership interface {
	Members() []Member
	Changed() <-chan struct{}
	SetBootstrapped() error
}

// QuorumConfig configures the quorum loop.
type QuorumConfig struct {
	Self int32
	// BootstrapExpect is the number of controller-eligible nodes a fresh
	// cluster waits for before it bootstraps raft, and the number of voters
	// the leader keeps. 1 is a node that bootstrapped alone (or joins one).
	BootstrapExpect int
	Store           Store
	Members         Membership
	Logger          *slog.Logger
}

// reconcileInterval bounds how long a missed membership event goes unseen.
const reconcileInterval = 250 * time.Millisecond

// Quorum runs the loop that turns membership into raft changes.
type Quorum struct {
	cfg      QuorumConfig
	log      *slog.Logger
	booted   bool
	lastErr  string
	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// StartQuorum starts the loop; Stop ends it.
func StartQuorum(cfg QuorumConfig) *Quorum {
	q := &Quorum{cfg: cfg, log: cfg.Logger, stop: make(chan struct{}), done: make(chan struct{})}
	if q.log == nil {
		q.log = slog.Default()
	}
	go q.run()
	return q
}

// Stop ends the loop and waits for it.
func (q *Quorum) Stop() {
	q.stopOnce.Do(func() { close(q.stop) })
	<-q.done
}

func (q *Quorum) run() {
	defer close(q.done)
	t := time.NewTicker(reconcileInterval)
	defer t.Stop()
	for {
		q.report(q.step())
		select {
		case <-q.stop:
			return
		case <-q.cfg.Members.Changed():
		case <-t.C:
		}
	}
}

// report logs an error once until it changes; losing the leadership in
// the middle of a step is routine and logged at debug.
func (q *Quorum) report(err error) {
	if err == nil {
		q.lastErr = ""
		return
	}
	if err.Error() == q.lastErr {
		return
	}
	q.lastErr = err.Error()
	level := slog.LevelWarn
	if errors.Is(err, meta.ErrNotController) {
		level = slog.LevelDebug
	}
	q.log.Log(context.Background(), level, "cluster reconcile", "err", err)
}

// step does one round: bootstrap if due, then, on the leader, reconcile the
// raft configuration and the broker registrations with gossip.
func (q *Quorum) step() error {
	members := q.cfg.Members.Members()
	servers, err := q.cfg.Store.Servers()
	if err != nil {
		return err
	}
	if !q.booted {
		q.booted = q.cfg.Store.HadState() || len(servers) > 0
	}
	if !q.booted && q.cfg.BootstrapExpect > 1 {
		if voters, ok := bootstrapVoters(q.cfg.Self, members, q.cfg.BootstrapExpect); ok {
			if err := q.cfg.Store.BootstrapVoters(voters); err != nil {
				return err
			}
			q.log.Info("metadata quorum bootstrapped", "voters", len(voters))
			q.booted = true
		}
	}
	if q.booted {
		if err := q.cfg.Members.SetBootstrapped(); err != nil {
			return err
		}
	}
	if !q.cfg.Store.IsLeader() {
		return nil
	}
	if err := q.cfg.Store.EnsureClusterID(); err != nil {
		return err
	}
	var errs []error
	for _, c := range planChanges(q.cfg.Self, members, servers, q.cfg.BootstrapExpect) {
		switch c.kind {
		case addServer:
			err = q.cfg.Store.AddServer(c.server)
			if err == nil {
				q.log.Info("raft server added", "node", c.server.ID, "raft", c.server.Addr, "voter", c.server.Voter)
			}
		case removeServer:
			err = q.cfg.Store.RemoveServer(c.server.ID)
			if err == nil {
				q.log.Info("raft server removed", "node", c.server.ID, "reason", "left")
			}
		}
		errs = append(errs, err)
	}
	for _, m := range members {
		if !m.Alive() || !m.Eligible() {
			continue
		}
		b, err := brokerOf(m)
		if err == nil {
			old, had := q.cfg.Store.Broker(b.ID)
			err = q.cfg.Store.RegisterBroker(b)
			if err == nil && had && old.Incarnation != b.Incarnation {
				q.log.Info("broker restarted: new incarnation, fenced until its old one holds nothing",
					"node", b.ID, "old_broker_epoch", old.Epoch)
			}
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// brokerOf is the registration of a member.
func brokerOf(m Member) (meta.Broker, error) {
	host, portStr, err := net.SplitHostPort(m.Kafka)
	if err != nil {
		return meta.Broker{}, fmt.Errorf("member %d kafka address: %w", m.ID, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return meta.Broker{}, fmt.Errorf("member %d kafka port: %w", m.ID, err)
	}
	return meta.Broker{ID: m.ID, Host: host, Port: int32(port), Rack: m.Rack, Roles: m.Roles, Internal: m.Internal,
		Incarnation: m.Incarnation}, nil
}
