// Package meta holds the cluster metadata (topics, topic ids, partitions,
// leader epochs, configs) in a replicated log, as Kafka's KRaft does: every
// change is a command appended through hashicorp/raft and applied by a
// deterministic state machine, so a node that joins later rebuilds the same
// state from the log or a snapshot. Today the quorum is this node alone.
package meta

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// Config configures a Store.
type Config struct {
	// Dir holds raft.db (the boltdb log and stable store) and snapshots/.
	// Empty keeps everything in memory (tests).
	Dir string
	// NodeID is this broker's id; it is also the raft server id.
	NodeID int32
	// RaftAddr is the TCP address raft binds, e.g. "127.0.0.1:7947". Empty
	// uses an in-memory transport (tests).
	RaftAddr string
	// Logger receives raft's warnings and errors; nil means slog.Default().
	Logger *slog.Logger
	// Clustered leaves a fresh store unbootstrapped and Open does not wait
	// to lead: package cluster bootstraps it once gossip shows the expected
	// nodes (BootstrapVoters) or the leader adds it. False is the single
	// node of today: bootstrap alone and lead before Open returns.
	Clustered bool
}

// Timing. Short timeouts make a single node leader within half a second of
// start; the snapshot settings keep the log to a few thousand entries.
const (
	heartbeatTimeout  = 200 * time.Millisecond
	leaderLease       = 100 * time.Millisecond
	snapshotInterval  = 30 * time.Second
	snapshotThreshold = 1024
	trailingLogs      = 1024
	snapshotsRetained = 2
	openTimeout       = 10 * time.Second
	applyTimeout      = 10 * time.Second
)

// Store is the metadata of the cluster as seen by this node.
type Store struct {
	cfg   Config
	log   *slog.Logger
	fsm   *fsm
	raft  *raft.Raft
	bolt  *raftboltdb.BoltStore // nil in memory
	addr  raft.ServerAddress    // of the transport
	close sync.Once
	cerr  error

	hadState bool // raft had a log or snapshot when the store opened

	wmu      sync.Mutex
	watchers map[uint64]chan struct{}
	nextW    uint64
}

// Open opens the metadata store in cfg.Dir, creating and bootstrapping a
// single-voter cluster there if it is new. It returns once this node is the
// leader and every entry of the log is applied.
func Open(cfg Config) (*Store, error) {
	s := &Store{cfg: cfg, log: cfg.Logger, watchers: map[uint64]chan struct{}{}}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.fsm = newFSM(s.notify)
	if err := s.start(); err != nil {
		return nil, err
	}
	if cfg.Clustered {
		return s, nil
	}
	if err := s.awaitLeader(); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("meta: open %s: %w", cfg.Dir, err)
	}
	return s, nil
}

// start builds the stores and transport, bootstraps a fresh node and starts raft.
func (s *Store) start() (err error) {
	hl := newHCLog(s.log)
	var (
		logs   raft.LogStore
		stable raft.StableStore
		snaps  raft.SnapshotStore
	)
	if s.cfg.Dir == "" {
		mem := raft.NewInmemStore()
		logs, stable, snaps = mem, mem, raft.NewInmemSnapshotStore()
	} else {
		if err := os.MkdirAll(s.cfg.Dir, 0o755); err != nil {
			return fmt.Errorf("meta: %w", err)
		}
		s.bolt, err = raftboltdb.New(raftboltdb.Options{
			Path:        filepath.Join(s.cfg.Dir, "raft.db"),
			BoltOptions: &bbolt.Options{Timeout: time.Second}, // another process holds it: fail, not hang
		})
		if err != nil {
			return fmt.Errorf("meta: open %s: %w", filepath.Join(s.cfg.Dir, "raft.db"), err)
		}
		defer func() {
			if err != nil {
				_ = s.bolt.Close()
			}
		}()
		logs, stable = s.bolt, s.bolt
		snaps, err = raft.NewFileSnapshotStoreWithLogger(s.cfg.Dir, snapshotsRetained, hl)
		if err != nil {
			return fmt.Errorf("meta: %w", err)
		}
		if logs, err = raft.NewLogCache(256, s.bolt); err != nil {
			return fmt.Errorf("meta: %w", err)
		}
	}

	var trans raft.Transport
	if s.cfg.RaftAddr == "" {
		_, trans = raft.NewInmemTransport("")
	} else if trans, err = raft.NewTCPTransportWithConfig(s.cfg.RaftAddr, nil, &raft.NetworkTransportConfig{
		MaxPool: 3, Timeout: applyTimeout, Logger: hl,
		// No pipelined replication: a pipeline to a peer that died can
		// block the leader's Shutdown for good (its sender waits on a full
		// in-flight queue nobody drains), and the metadata log is far too
		// small to need it.
		MaxRPCsInFlight: 1,
	}); err != nil {
		return fmt.Errorf("meta: raft transport: %w", err)
	}
	s.addr = trans.LocalAddr()
	closeTrans := func() {
		if c, ok := trans.(raft.WithClose); ok {
			_ = c.Close()
		}
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(strconv.Itoa(int(s.cfg.NodeID)))
	rc.HeartbeatTimeout = heartbeatTimeout
	rc.ElectionTimeout = heartbeatTimeout
	rc.LeaderLeaseTimeout = leaderLease
	rc.SnapshotInterval = snapshotInterval
	rc.SnapshotThreshold = snapshotThreshold
	rc.TrailingLogs = trailingLogs
	rc.Logger = hl
	rc.NoLegacyTelemetry = true

	existing, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		closeTrans()
		return fmt.Errorf("meta: %w", err)
	}
	s.hadState = existing
	if !existing && !s.cfg.Clustered {
		boot := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: rc.LocalID, Address: s.addr}}}
		if err := raft.BootstrapCluster(rc, logs, stable, snaps, trans, boot); err != nil {
			closeTrans()
			return fmt.Errorf("meta: bootstrap: %w", err)
		}
	}
	if s.raft, err = raft.NewRaft(rc, s.fsm, logs, stable, snaps, trans); err != nil {
		closeTrans()
		return fmt.Errorf("meta: start raft: %w", err)
	}
	return nil
}

// awaitLeader waits until this node leads and has applied the whole log, then
// brings its recorded address up to date and sets the cluster id if unset.
func (s *Store) awaitLeader() error {
	deadline := time.Now().Add(openTimeout)
	for s.raft.State() != raft.Leader {
		if time.Now().After(deadline) {
			return fmt.Errorf("not leader after %s (state %s); is node %d the voter recorded in this directory?",
				openTimeout, s.raft.State(), s.cfg.NodeID)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.raft.Barrier(time.Until(deadline)).Error(); err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	if err := s.updateAddress(); err != nil {
		return err
	}
	if s.ClusterID() == "" {
		if _, err := s.propose(cmdInitCluster, initClusterCmd{ClusterID: newUUID().String()}); err != nil {
			return err
		}
	}
	return nil
}

// updateAddress records this node's current raft address if it moved since the
// configuration was written (a new --raft-addr, or a random test port).
func (s *Store) updateAddress() error {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("raft configuration: %w", err)
	}
	id, addr := raft.ServerID(strconv.Itoa(int(s.cfg.NodeID))), s.addr
	for _, srv := range f.Configuration().Servers {
		if srv.ID == id && srv.Address != addr {
			if err := s.raft.AddVoter(id, addr, 0, applyTimeout).Error(); err != nil {
				return fmt.Errorf("update raft address: %w", err)
			}
		}
	}
	return nil
}

// Close stops raft and closes the log. It is safe to call more than once.
func (s *Store) Close() error {
	s.close.Do(func() {
		var errs []error
		if s.raft != nil {
			errs = append(errs, s.raft.Shutdown().Error()) // also closes the transport
		}
		if s.bolt != nil {
			errs = append(errs, s.bolt.Close())
		}
		s.cerr = errors.Join(errs...)
	})
	return s.cerr
}

// Topic returns a copy of the named topic. It takes no lock.
func (s *Store) Topic(name string) (Topic, bool) {
	t := s.fsm.cur.Load().byName[name]
	if t == nil {
		return Topic{}, false
	}
	return t.clone(), true
}

// TopicByID returns a copy of the topic with the given id.
func (s *Store) TopicByID(id [16]byte) (Topic, bool) {
	t := s.fsm.cur.Load().byID[id]
	if t == nil {
		return Topic{}, false
	}
	return t.clone(), true
}

// Topics returns copies of all topics, sorted by name.
func (s *Store) Topics() []Topic {
	st := s.fsm.cur.Load()
	out := make([]Topic, 0, len(st.byName))
	for _, t := range st.byName {
		out = append(out, t.clone())
	}
	slices.SortFunc(out, func(a, b Topic) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// ClusterID is the id chosen when the cluster was bootstrapped: 22 characters
// of base64url, like Kafka's.
func (s *Store) ClusterID() string { return s.fsm.cur.Load().clusterID }

// NodeID is this broker's id.
func (s *Store) NodeID() int32 { return s.cfg.NodeID }

// Version is the raft index of the last entry that changed the metadata.
func (s *Store) Version() uint64 { return s.fsm.cur.Load().index }
