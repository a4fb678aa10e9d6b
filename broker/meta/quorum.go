package meta

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/hashicorp/raft"
)

// The quorum API: what package cluster needs to turn membership into raft
// configuration changes. Every change is made by the leader; on a follower
// the calls fail with ErrNotController.

// ErrNotController is returned by a metadata write on a node that is not the
// raft leader. The Kafka handlers answer it with NOT_CONTROLLER, which every
// client retries after refreshing metadata (whose controller is the leader).
var ErrNotController = errors.New("meta: not the controller")

// Server is one member of the raft configuration.
type Server struct {
	ID    int32
	Addr  string // raft address
	Voter bool
}

// HadState reports whether the store had a raft log or snapshot when it
// opened: such a node is bootstrapped already and must never bootstrap again.
func (s *Store) HadState() bool { return s.hadState }

// RaftAddr is the address of this node's raft transport.
func (s *Store) RaftAddr() string { return string(s.addr) }

// BootstrapVoters bootstraps a fresh clustered store with the given voters.
// Every node of a bootstrap-expect group calls it with the same list, which
// hashicorp/raft allows; on a node with state it fails with raft.ErrCantBootstrap.
func (s *Store) BootstrapVoters(voters []Server) error {
	cfg := raft.Configuration{}
	for _, v := range voters {
		cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: raft.Voter, ID: serverID(v.ID), Address: raft.ServerAddress(v.Addr)})
	}
	if err := s.raft.BootstrapCluster(cfg).Error(); err != nil {
		return fmt.Errorf("meta: bootstrap %d voters: %w", len(voters), err)
	}
	return nil
}

// IsLeader reports whether this node is the raft leader.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// LeaderID is the node id of the raft leader as this node knows it, or -1.
func (s *Store) LeaderID() int32 {
	_, id := s.raft.LeaderWithID()
	n, err := strconv.ParseInt(string(id), 10, 32)
	if id == "" || err != nil {
		return -1
	}
	return int32(n)
}

// Servers is the latest raft configuration, as this node has it.
func (s *Store) Servers() ([]Server, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("meta: raft configuration: %w", err)
	}
	var out []Server
	for _, srv := range f.Configuration().Servers {
		n, err := strconv.ParseInt(string(srv.ID), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("meta: raft server id %q: %w", srv.ID, err)
		}
		out = append(out, Server{ID: int32(n), Addr: string(srv.Address), Voter: srv.Suffrage == raft.Voter})
	}
	return out, nil
}

// AddServer adds a node to the configuration (or moves its address), as a
// voter or a non-voter.
func (s *Store) AddServer(srv Server) error {
	var f raft.IndexFuture
	if srv.Voter {
		f = s.raft.AddVoter(serverID(srv.ID), raft.ServerAddress(srv.Addr), 0, applyTimeout)
	} else {
		f = s.raft.AddNonvoter(serverID(srv.ID), raft.ServerAddress(srv.Addr), 0, applyTimeout)
	}
	if err := f.Error(); err != nil {
		return fmt.Errorf("meta: add server %d at %s: %w", srv.ID, srv.Addr, notController(err))
	}
	return nil
}

// RemoveServer removes a node from the configuration.
func (s *Store) RemoveServer(id int32) error {
	if err := s.raft.RemoveServer(serverID(id), 0, applyTimeout).Error(); err != nil {
		return fmt.Errorf("meta: remove server %d: %w", id, notController(err))
	}
	return nil
}

// EnsureClusterID sets the cluster id once, on the leader of a fresh cluster.
func (s *Store) EnsureClusterID() error {
	if s.ClusterID() != "" {
		return nil
	}
	_, err := s.propose(cmdInitCluster, initClusterCmd{ClusterID: newUUID().String()})
	return err
}

func serverID(id int32) raft.ServerID { return raft.ServerID(strconv.Itoa(int(id))) }

func notController(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return fmt.Errorf("%w (%v)", ErrNotController, err)
	}
	return err
}

// TransferLeadership hands the leadership to another voter, if this node
// leads and there is one; a node leaving gracefully calls it first.
func (s *Store) TransferLeadership() error {
	if !s.IsLeader() {
		return nil
	}
	servers, err := s.Servers()
	if err != nil {
		return err
	}
	others := 0
	for _, srv := range servers {
		if srv.Voter && srv.ID != s.cfg.NodeID {
			others++
		}
	}
	if others == 0 {
		return nil
	}
	if err := s.raft.LeadershipTransfer().Error(); err != nil {
		return fmt.Errorf("meta: leadership transfer: %w", err)
	}
	return nil
}

// CaughtUp reports whether this node's copy of the metadata is as recent as
// the quorum's: it leads and has applied everything it committed, or it has
// heard from a leader and applied everything up to the leader's commit
// index. A restarted node holds only its last snapshot until then (raft
// re-applies its log once a leader confirms it), so it must not act on its
// partition roles before.
func (s *Store) CaughtUp() bool {
	switch s.raft.State() {
	case raft.Leader:
		return s.raft.AppliedIndex() >= s.raft.CommitIndex()
	case raft.Follower:
		commit := s.raft.CommitIndex()
		return commit > 0 && !s.raft.LastContact().IsZero() && s.raft.AppliedIndex() >= commit
	}
	return false
}
