package meta

import (
	"errors"
	"fmt"
)

// propose appends a command to the raft log and returns its apply result once
// this node has applied it.
func (s *Store) propose(typ string, body any) (any, error) {
	data, err := encodeCommand(typ, body)
	if err != nil {
		return nil, err
	}
	f := s.raft.Apply(data, applyTimeout)
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("meta: %s: %w", typ, notController(err))
	}
	return f.Response(), nil
}

// batchResult spreads the result of a batch command over errs, whose entries
// at the positions in idx are the batch's items.
func batchResult(errs []error, idx []int, resp any, err error) {
	if err == nil {
		switch r := resp.(type) {
		case []error:
			if len(r) == len(idx) {
				for i, e := range r {
					errs[idx[i]] = e
				}
				return
			}
			err = fmt.Errorf("meta: %d results for %d items", len(r), len(idx))
		case error:
			err = r
		default:
			err = fmt.Errorf("meta: unexpected apply result %T", resp)
		}
	}
	for _, i := range idx {
		errs[i] = err
	}
}

// assign returns the replicas of count new partitions: the manual
// assignment when given, else rf replicas each placed over brokers (this
// node alone when none are given).
func (s *Store) assign(count int32, rf int, brokers []Broker, manual [][]int32) ([][]int32, error) {
	if manual != nil {
		if int32(len(manual)) != count {
			return nil, fmt.Errorf("%w: %d assignments for %d partitions", ErrInvalidPartitions, len(manual), count)
		}
		return manual, nil
	}
	if len(brokers) == 0 {
		brokers = []Broker{{ID: s.cfg.NodeID}}
	}
	return PlaceRandom(brokers, count, max(rf, 1))
}

// CreateTopics creates topics in one log entry and returns one error per spec:
// nil, ErrTopicExists, or ErrInvalidPartitions for a count below one.
func (s *Store) CreateTopics(specs []TopicSpec) []error {
	errs := make([]error, len(specs))
	cmd := createTopicsCmd{Topics: make([]newTopic, 0, len(specs))}
	idx := make([]int, 0, len(specs))
	for i, sp := range specs {
		if sp.Partitions < 1 {
			errs[i] = fmt.Errorf("%w: topic %s: %d partitions", ErrInvalidPartitions, sp.Name, sp.Partitions)
			continue
		}
		replicas, err := s.assign(sp.Partitions, int(sp.ReplicationFactor), sp.Brokers, sp.Assignment)
		if err != nil {
			errs[i] = fmt.Errorf("topic %s: %w", sp.Name, err)
			continue
		}
		cmd.Topics = append(cmd.Topics, newTopic{
			Name:     sp.Name,
			ID:       newUUID(),
			Replicas: replicas,
			Configs:  sp.Configs,
			Internal: sp.Internal,
		})
		idx = append(idx, i)
	}
	if len(idx) > 0 {
		resp, err := s.propose(cmdCreateTopics, cmd)
		batchResult(errs, idx, resp, err)
	}
	return errs
}

// DeleteTopics deletes topics in one log entry and returns one error per name:
// nil or ErrUnknownTopic.
func (s *Store) DeleteTopics(names []string) []error {
	errs := make([]error, len(names))
	if len(names) == 0 {
		return errs
	}
	idx := make([]int, len(names))
	for i := range idx {
		idx[i] = i
	}
	resp, err := s.propose(cmdDeleteTopics, deleteTopicsCmd{Names: names})
	batchResult(errs, idx, resp, err)
	return errs
}

// CreatePartitions grows a topic to total partitions, placing the new ones
// over brokers with the topic's replication factor unless manual gives their
// replicas. It returns ErrUnknownTopic, or ErrInvalidPartitions when total is
// not above the current count.
func (s *Store) CreatePartitions(name string, total int32, brokers []Broker, manual [][]int32) error {
	for range 3 { // retried only if a concurrent change moved the count
		t := s.fsm.cur.Load().byName[name]
		if t == nil {
			return fmt.Errorf("%w: %s", ErrUnknownTopic, name)
		}
		from := int32(len(t.Partitions))
		if total <= from {
			return fmt.Errorf("%w: topic %s has %d partitions, asked for %d", ErrInvalidPartitions, name, from, total)
		}
		replicas, err := s.assign(total-from, len(t.Partitions[0].Replicas), brokers, manual)
		if err != nil {
			return fmt.Errorf("topic %s: %w", name, err)
		}
		resp, err := s.propose(cmdCreatePartitions, createPartitionsCmd{
			Name: name, From: from, Total: total, Replicas: replicas,
		})
		if err == nil {
			err, _ = resp.(error)
		}
		if !errors.Is(err, errPartitionsChanged) {
			return err
		}
	}
	return fmt.Errorf("%w: topic %s", errPartitionsChanged, name)
}

// SetConfigs changes a topic's configs: with replace, set becomes the whole
// config (AlterConfigs); without, set is merged in and del removed
// (IncrementalAlterConfigs). It returns ErrUnknownTopic.
func (s *Store) SetConfigs(name string, set map[string]string, del []string, replace bool) error {
	resp, err := s.propose(cmdSetConfigs, setConfigsCmd{Name: name, Set: set, Delete: del, Replace: replace})
	if err != nil {
		return err
	}
	err, _ = resp.(error)
	return err
}
