package meta

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// state is one version of the metadata. It is immutable once published: apply
// builds the next state from shallow copies of the maps and fresh *Topic values
// for what changed, then swaps the pointer, so readers take no lock.
type state struct {
	clusterID string
	index     uint64 // raft index of the last entry that changed the state
	// nextProducerID is the first producer id not yet in any broker's block.
	nextProducerID int64
	byName         map[string]*Topic
	byID           map[[16]byte]*Topic
	// brokers are the registered brokers by id; a registration replaces the
	// previous one of the same id.
	brokers map[int32]Broker
}

func emptyState() *state {
	return &state{byName: map[string]*Topic{}, byID: map[[16]byte]*Topic{}, brokers: map[int32]Broker{}}
}

func (s *state) next(index uint64) *state {
	return &state{
		clusterID:      s.clusterID,
		index:          index,
		nextProducerID: s.nextProducerID,
		byName:         maps.Clone(s.byName),
		byID:           maps.Clone(s.byID),
		brokers:        maps.Clone(s.brokers),
	}
}

func (s *state) put(t *Topic) {
	s.byName[t.Name] = t
	s.byID[t.ID] = t
}

// fsm is the raft state machine. raft calls Apply, Snapshot and Restore from one
// goroutine; anyone may Load the current state at any time.
type fsm struct {
	cur     atomic.Pointer[state]
	changed func() // called after every published change
}

func newFSM(changed func()) *fsm {
	f := &fsm{changed: changed}
	f.cur.Store(emptyState())
	return f
}

func (f *fsm) publish(s *state) {
	f.cur.Store(s)
	if f.changed != nil {
		f.changed()
	}
}

// Apply applies one log entry and returns its result: []error for batch
// commands, error (possibly nil) for the rest. It never panics: a bug that
// would panic is turned into an error and the state stays as it was.
func (f *fsm) Apply(l *raft.Log) (resp any) {
	if l.Type != raft.LogCommand {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			resp = fmt.Errorf("meta: apply entry %d: panic: %v", l.Index, r)
		}
	}()
	next, resp := apply(f.cur.Load(), l.Data, l.Index)
	if next != nil {
		f.publish(next)
	}
	return resp
}

// apply is the deterministic core of Apply: it returns the next state, or nil
// when nothing changed, and the result for the proposer.
func apply(cur *state, data []byte, index uint64) (*state, any) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadCommand, err)
	}
	if env.Version != cmdVersion {
		return nil, fmt.Errorf("%w: %q version %d", errUnsupportedCommand, env.Type, env.Version)
	}
	switch env.Type {
	case cmdInitCluster:
		var c initClusterCmd
		if err := decodeBody(&env, &c); err != nil {
			return nil, err
		}
		return applyInitCluster(cur, &c, index)
	case cmdCreateTopics:
		var c createTopicsCmd
		if err := decodeBody(&env, &c); err != nil {
			return nil, err
		}
		return applyCreateTopics(cur, &c, index)
	case cmdDeleteTopics:
		var c deleteTopicsCmd
		if err := decodeBody(&env, &c); err != nil {
			return nil, err
		}
		return applyDeleteTopics(cur, &c, index)
	case cmdCreatePartitions:
		var c createPartitionsCmd
		if err := decodeBody(&env, &c); err != nil {
			return nil, err
		}
		return applyCreatePartitions(cur, &c, index)
	case cmdSetConfigs:
		var c setConfigsCmd
		if err := decodeBody(&env, &c); err != nil {
			return nil, err
		}
		return applySetConfigs(cur, &c, index)
	case cmdRegisterBroker:
		var c registerBrokerCmd
		if err := decodeBody(&env, &c); err != nil {
			return nil, err
		}
		return applyRegisterBroker(cur, &c, index)
	case cmdUnfenceBroker:
		var c unfenceBrokerCmd
		if err := decodeBody(&env, &c); err != nil {
			return nil, err
		}
		return applyUnfenceBroker(cur, &c, index)
	case cmdChangePartitions:
		var c changePartitionsCmd
		if err := decodeBody(&env, &c); err != nil {
			return nil, err
		}
		return applyChangePartitions(cur, &c, index)
	case cmdAllocateProducerIDs:
		var c allocateProducerIDsCmd
		if err := decodeBody(&env, &c); err != nil {
			return nil, err
		}
		return applyAllocateProducerIDs(cur, &c, index)
	}
	return nil, fmt.Errorf("%w: type %q", errUnsupportedCommand, env.Type)
}

func applyInitCluster(cur *state, c *initClusterCmd, index uint64) (*state, any) {
	if c.ClusterID == "" {
		return nil, fmt.Errorf("%w: empty cluster id", errBadCommand)
	}
	if cur.clusterID != "" {
		return nil, nil // the first one wins
	}
	next := cur.next(index)
	next.clusterID = c.ClusterID
	return next, nil
}

func applyCreateTopics(cur *state, c *createTopicsCmd, index uint64) (*state, any) {
	errs := make([]error, len(c.Topics))
	var next *state
	for i := range c.Topics {
		nt := &c.Topics[i]
		s := cur
		if next != nil {
			s = next
		}
		switch {
		case nt.Name == "":
			errs[i] = fmt.Errorf("%w: empty topic name", errBadCommand)
		case nt.ID == uuid{}:
			errs[i] = fmt.Errorf("%w: topic %s: zero id", errBadCommand, nt.Name)
		case len(nt.Replicas) == 0:
			errs[i] = fmt.Errorf("%w: topic %s: no partitions", ErrInvalidPartitions, nt.Name)
		case s.byName[nt.Name] != nil:
			errs[i] = fmt.Errorf("%w: %s", ErrTopicExists, nt.Name)
		case s.byID[nt.ID] != nil:
			errs[i] = fmt.Errorf("%w: topic %s: %s", errTopicIDInUse, nt.Name, nt.ID)
		default:
			parts, err := newPartitions(nt.Replicas)
			if err != nil {
				errs[i] = fmt.Errorf("topic %s: %w", nt.Name, err)
				continue
			}
			if next == nil {
				next = cur.next(index)
			}
			next.put(&Topic{
				Name:       nt.Name,
				ID:         nt.ID,
				Partitions: parts,
				Configs:    cloneConfigs(nt.Configs),
				Internal:   nt.Internal,
			})
		}
	}
	return next, errs
}

// newPartitions builds fresh partitions from their assignments: leader = first
// replica, ISR = all replicas, leader epoch 0.
func newPartitions(assign [][]int32) ([]Partition, error) {
	n := 0
	for p, r := range assign {
		if len(r) == 0 {
			return nil, fmt.Errorf("%w: partition %d has no replicas", errBadCommand, p)
		}
		n += 2 * len(r)
	}
	ids := make([]int32, 0, n)
	parts := make([]Partition, len(assign))
	for p, r := range assign {
		parts[p].Leader = r[0]
		parts[p].Replicas, ids = carve(ids, r)
		parts[p].ISR, ids = carve(ids, r)
	}
	return parts, nil
}

func applyDeleteTopics(cur *state, c *deleteTopicsCmd, index uint64) (*state, any) {
	errs := make([]error, len(c.Names))
	var next *state
	for i, name := range c.Names {
		s := cur
		if next != nil {
			s = next
		}
		t := s.byName[name]
		if t == nil {
			errs[i] = fmt.Errorf("%w: %s", ErrUnknownTopic, name)
			continue
		}
		if next == nil {
			next = cur.next(index)
		}
		delete(next.byName, name)
		delete(next.byID, t.ID)
	}
	return next, errs
}

func applyCreatePartitions(cur *state, c *createPartitionsCmd, index uint64) (*state, any) {
	t := cur.byName[c.Name]
	if t == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownTopic, c.Name)
	}
	have := int64(len(t.Partitions))
	if int64(c.Total) <= have {
		return nil, fmt.Errorf("%w: topic %s has %d partitions, asked for %d", ErrInvalidPartitions, c.Name, have, c.Total)
	}
	if int64(c.From) != have || int64(len(c.Replicas)) != int64(c.Total)-have {
		return nil, fmt.Errorf("%w: topic %s", errPartitionsChanged, c.Name)
	}
	added, err := newPartitions(c.Replicas)
	if err != nil {
		return nil, fmt.Errorf("topic %s: %w", c.Name, err)
	}
	nt := *t
	nt.Partitions = append(slices.Clip(t.Partitions), added...)
	next := cur.next(index)
	next.put(&nt)
	return next, nil
}

func applySetConfigs(cur *state, c *setConfigsCmd, index uint64) (*state, any) {
	t := cur.byName[c.Name]
	if t == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownTopic, c.Name)
	}
	var cfg map[string]string
	if c.Replace {
		cfg = make(map[string]string, len(c.Set))
	} else {
		cfg = maps.Clone(t.Configs)
		if cfg == nil {
			cfg = map[string]string{}
		}
	}
	maps.Copy(cfg, c.Set)
	for _, k := range c.Delete {
		delete(cfg, k)
	}
	nt := *t
	nt.Configs = cfg
	next := cur.next(index)
	next.put(&nt)
	return next, nil
}

var _ raft.FSM = (*fsm)(nil)
