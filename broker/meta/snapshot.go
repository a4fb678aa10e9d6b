package meta

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/hashicorp/raft"
)

// A snapshot is the whole state as one JSON document, topics sorted by name.
// Its types are separate from the public ones so the file format changes only
// on purpose; snapshotFormat is bumped when it does.
const snapshotFormat = 1

type snapshotDoc struct {
	Format    int         `json:"format"`
	ClusterID string      `json:"cluster_id"`
	Index     uint64      `json:"index"`
	Topics    []snapTopic `json:"topics"`
	// NextProducerID was added without a format bump: snapshots written
	// before it read as 0, which is right, since no id was handed out then.
	NextProducerID int64 `json:"next_producer_id,omitempty"`
	// Brokers are the registrations; absent in snapshots written before
	// clustering, which read as none. Their incarnation, epoch and fenced
	// flag were added without a format bump: older snapshots read as epoch
	// 0 (unknown, matching no request) and unfenced, and the broker's next
	// registration, with an incarnation, gets a real epoch.
	Brokers []Broker `json:"brokers,omitempty"`
}

type snapTopic struct {
	Name       string            `json:"name"`
	ID         uuid              `json:"id"`
	Partitions []snapPartition   `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
	Internal   bool              `json:"internal,omitempty"`
}

type snapPartition struct {
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leader_epoch"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	// PartitionEpoch was added without a format bump: older snapshots
	// read as 0.
	PartitionEpoch int32   `json:"partition_epoch,omitempty"`
	Adding         []int32 `json:"adding,omitempty"`
	Removing       []int32 `json:"removing,omitempty"`
}

// fsmSnapshot holds a published state; since states are immutable, Persist
// may run concurrently with later applies.
type fsmSnapshot struct{ st *state }

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{st: f.cur.Load()}, nil
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	w := bufio.NewWriter(sink)
	err := json.NewEncoder(w).Encode(s.st.doc())
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("meta: write snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

// Restore replaces the state with a snapshot's.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var doc snapshotDoc
	if err := json.NewDecoder(bufio.NewReader(rc)).Decode(&doc); err != nil {
		return fmt.Errorf("meta: read snapshot: %w", err)
	}
	st, err := doc.state()
	if err != nil {
		return fmt.Errorf("meta: read snapshot: %w", err)
	}
	f.publish(st)
	return nil
}

func (s *state) doc() *snapshotDoc {
	d := &snapshotDoc{
		Format:    snapshotFormat,
		ClusterID: s.clusterID,
		Index:     s.index,
		Topics:    make([]snapTopic, 0, len(s.byName)),

		NextProducerID: s.nextProducerID,
	}
	for _, t := range s.byName {
		st := snapTopic{Name: t.Name, ID: t.ID, Configs: t.Configs, Internal: t.Internal}
		st.Partitions = make([]snapPartition, len(t.Partitions))
		for i, p := range t.Partitions {
			st.Partitions[i] = snapPartition(p)
		}
		d.Topics = append(d.Topics, st)
	}
	slices.SortFunc(d.Topics, func(a, b snapTopic) int { return strings.Compare(a.Name, b.Name) })
	for _, br := range s.brokers {
		d.Brokers = append(d.Brokers, br)
	}
	slices.SortFunc(d.Brokers, func(a, b Broker) int { return int(a.ID) - int(b.ID) })
	return d
}

func (d *snapshotDoc) state() (*state, error) {
	if d.Format != snapshotFormat {
		return nil, fmt.Errorf("unsupported format %d", d.Format)
	}
	s := emptyState()
	s.clusterID = d.ClusterID
	for _, br := range d.Brokers {
		if br.Epoch < 0 {
			return nil, fmt.Errorf("broker %d: negative epoch %d", br.ID, br.Epoch)
		}
		s.brokers[br.ID] = br
	}
	s.index = d.Index
	if d.NextProducerID < 0 {
		return nil, fmt.Errorf("negative next producer id %d", d.NextProducerID)
	}
	s.nextProducerID = d.NextProducerID
	for _, st := range d.Topics {
		if st.Name == "" || len(st.Partitions) == 0 {
			return nil, fmt.Errorf("topic %q: empty name or no partitions", st.Name)
		}
		if s.byName[st.Name] != nil || s.byID[st.ID] != nil {
			return nil, fmt.Errorf("topic %s: duplicate name or id", st.Name)
		}
		t := &Topic{Name: st.Name, ID: st.ID, Configs: cloneConfigs(st.Configs), Internal: st.Internal}
		t.Partitions = make([]Partition, len(st.Partitions))
		for i, p := range st.Partitions {
			t.Partitions[i] = Partition(p)
		}
		s.put(t)
	}
	return s, nil
}

var _ raft.FSMSnapshot = (*fsmSnapshot)(nil)
