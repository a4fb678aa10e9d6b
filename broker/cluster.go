package broker

import (
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker/cluster"
	"github.com/sluice-io/sluice/broker/meta"
)

// Clustering, this step: gossip membership and the metadata quorum. Every
// node serves Metadata from its own copy of the raft state; only the raft
// leader (the controller) writes it, and the other nodes answer writes with
// NOT_CONTROLLER (see meta.ErrNotController). Partitions are not placed
// across brokers yet: every node opens every partition locally.

// leaveTimeout bounds the gossip leave broadcast of a graceful shutdown.
const leaveTimeout = 2 * time.Second

// clustered reports whether the metadata store waits for the cluster instead
// of bootstrapping alone: a node that expects others, or joins existing ones.
func (c *Config) clustered() bool {
	return c.GossipAddr != "" && (c.BootstrapExpect > 1 || len(c.Join) > 0)
}

// startCluster starts gossip and the quorum loop on a clustered node; on a
// standalone one (no gossip address) it does nothing.
func (b *Broker) startCluster() error {
	if b.cfg.GossipAddr == "" {
		return nil
	}
	expect := max(b.cfg.BootstrapExpect, 1)
	roles := b.cfg.Roles
	if len(roles) == 0 {
		roles = []string{cluster.RoleBroker}
	}
	g, err := cluster.StartGossip(cluster.GossipConfig{
		BindAddr: b.cfg.GossipAddr,
		Join:     b.cfg.Join,
		Self: cluster.Member{
			ID: b.cfg.NodeID, Kafka: fmt.Sprintf("%s:%d", b.advHost, b.advPort), Internal: b.cfg.InternalAddr, Raft: b.meta.RaftAddr(),
			Roles: roles, Rack: b.cfg.Rack, Bootstrapped: b.meta.HadState(),
			Incarnation: cluster.NewIncarnation(), // a new broker epoch for every start
		},
		Logger:        b.logger,
		ProbeInterval: b.cfg.GossipProbeInterval,
	})
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	b.gossip = g
	b.ctl = b.newControllerClient()
	b.quorum = cluster.StartQuorum(cluster.QuorumConfig{
		Self: b.cfg.NodeID, BootstrapExpect: expect, Store: b.meta, Members: g, Logger: b.logger,
	})
	go func() {
		select {
		case err := <-g.Fatal():
			err = fmt.Errorf("cluster: %w", err)
			b.fatal.Store(&err)
			b.ln.Close()
		case <-b.closing:
		}
	}()
	return nil
}

// leaveCluster is the cluster part of a graceful shutdown: stop reconciling,
// hand the raft leadership over, and tell gossip this node left, so the new
// leader removes it from the quorum.
func (b *Broker) leaveCluster() {
	if b.gossip == nil {
		return
	}
	b.drain()
	b.quorum.Stop()
	b.ctl.close()
	if err := b.meta.TransferLeadership(); err != nil {
		b.logger.Warn("leaving cluster", "err", err)
	}
	if err := b.gossip.Leave(leaveTimeout); err != nil {
		b.logger.Warn("leaving cluster", "err", err)
	}
}

// drainTimeout bounds the wait for leaderships to move away on a graceful
// shutdown.
const drainTimeout = 10 * time.Second

// drain is the controlled shutdown: gossip that this node leaves, and wait
// until the controller has moved every partition leadership it held to
// another in-sync replica (or the wait times out: the partitions then fail
// over as for a crash).
func (b *Broker) drain() {
	b.draining.Store(true)
	if err := b.gossip.Drain(leaveTimeout); err != nil {
		b.logger.Warn("controlled shutdown", "err", err)
		return
	}
	deadline := time.Now().Add(drainTimeout)
	for time.Now().Before(deadline) {
		n := b.ledPartitions()
		if n == 0 {
			b.logger.Info("controlled shutdown: no partition leaderships left")
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.logger.Warn("controlled shutdown: leaderships still held at the deadline", "partitions", b.ledPartitions())
}

// ledPartitions counts the replicated partitions this node leads that have
// another in-sync replica to take over.
func (b *Broker) ledPartitions() int {
	n := 0
	for _, p := range b.allPartitions() {
		if r := p.role.Load(); r.leads() && !r.alone() {
			n++
		}
	}
	return n
}

// brokerList is the brokers of Metadata and DescribeCluster: this node alone
// when standalone, else the registered brokers gossip reports alive, and
// every partition leader the metadata names (a client must be able to
// route to a leader even while this node's gossip view lags the quorum's,
// as after a network partition).
func (b *Broker) brokerList() []kmsg.MetadataResponseBroker {
	if b.gossip == nil {
		return []kmsg.MetadataResponseBroker{{NodeID: b.cfg.NodeID, Host: b.advHost, Port: b.advPort}}
	}
	alive := b.leaderIDs()
	for _, m := range b.gossip.Members() {
		alive[m.ID] = alive[m.ID] || m.Alive()
	}
	var out []kmsg.MetadataResponseBroker
	for _, r := range b.meta.Brokers() {
		if !alive[r.ID] {
			continue
		}
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port = r.ID, r.Host, r.Port
		if r.Rack != "" {
			rack := r.Rack
			mb.Rack = &rack
		}
		out = append(out, mb)
	}
	return out
}

// leaderIDs is the set of brokers leading some partition, computed once per
// metadata version.
func (b *Broker) leaderIDs() map[int32]bool {
	v := b.meta.Version()
	if c := b.leaders.Load(); c != nil && c.version == v {
		return maps.Clone(c.ids)
	}
	ids := map[int32]bool{}
	for _, t := range b.meta.Topics() {
		for _, p := range t.Partitions {
			if p.Leader >= 0 {
				ids[p.Leader] = true
			}
		}
	}
	b.leaders.Store(&leaderSet{version: v, ids: ids})
	return maps.Clone(ids)
}

type leaderSet struct {
	version uint64
	ids     map[int32]bool
}

// controllerID is the controller of Metadata and DescribeCluster: the raft
// leader, or -1 while there is none.
func (b *Broker) controllerID() int32 {
	if b.gossip == nil {
		return b.cfg.NodeID
	}
	return b.meta.LeaderID()
}

// notController reports whether a metadata write failed because this node is
// not the raft leader; the handler then answers NOT_CONTROLLER.
func notController(err error) bool { return errors.Is(err, meta.ErrNotController) }

// aliveMembersGauge counts the members gossip reports alive, this node
// included (1 on a standalone node).
func aliveMembersGauge(b *Broker) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sluice_cluster_members_alive", Help: "Cluster members gossip reports alive, this node included.",
	}, func() float64 {
		if b.gossip == nil {
			return 1
		}
		n := 0
		for _, m := range b.gossip.Members() {
			if m.Alive() {
				n++
			}
		}
		return float64(n)
	})
}

// raftLeaderGauge is 1 while this node leads the metadata quorum.
func raftLeaderGauge(b *Broker) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sluice_cluster_raft_leader", Help: "1 while this node is the raft leader of the metadata quorum (the controller), else 0.",
	}, func() float64 {
		if b.meta != nil && b.meta.IsLeader() {
			return 1
		}
		return 0
	})
}
