package meta

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// Every entry of the metadata log is a JSON envelope
//
//	{"type": "create_topics", "version": 1, "body": {...}}
//
// whose body shape is fixed by (type, version). Apply refuses a type or version
// it does not know, changing nothing, so a node running older code fails the
// entry instead of misreading it. A command holds every input of its apply
// (topic ids, replica assignments, the cluster id): applying the same log gives
// the same state on every node.
const (
	cmdInitCluster      = "init_cluster"
	cmdCreateTopics     = "create_topics"
	cmdDeleteTopics     = "delete_topics"
	cmdCreatePartitions = "create_partitions"
	cmdSetConfigs       = "set_configs"
)

// cmdVersion is the version every command type is written at today.
const cmdVersion = 1

type envelope struct {
	Type    string          `json:"type"`
	Version int             `json:"version"`
	Body    json.RawMessage `json:"body"`
}

// initClusterCmd sets the cluster id once; later ones are ignored.
type initClusterCmd struct {
	ClusterID string `json:"cluster_id"`
}

type createTopicsCmd struct {
	Topics []newTopic `json:"topics"`
}

// newTopic is one topic to create. Replicas[p] is the assignment of partition p;
// its first replica becomes the leader and the ISR starts as all replicas.
type newTopic struct {
	Name     string            `json:"name"`
	ID       uuid              `json:"id"`
	Replicas [][]int32         `json:"replicas"`
	Configs  map[string]string `json:"configs,omitempty"`
	Internal bool              `json:"internal,omitempty"`
}

type deleteTopicsCmd struct {
	Names []string `json:"names"`
}

// createPartitionsCmd grows a topic from From to Total partitions; Replicas holds
// the assignments of the new partitions From..Total-1. From is the count the
// proposer saw: if the topic changed meanwhile, apply fails with
// errPartitionsChanged and the proposer tries again.
type createPartitionsCmd struct {
	Name     string    `json:"name"`
	From     int32     `json:"from"`
	Total    int32     `json:"total"`
	Replicas [][]int32 `json:"replicas"`
}

// setConfigsCmd sets and deletes topic configs; Replace makes Set the whole
// config (AlterConfigs) instead of a change to it (IncrementalAlterConfigs).
type setConfigsCmd struct {
	Name    string            `json:"name"`
	Set     map[string]string `json:"set,omitempty"`
	Delete  []string          `json:"delete,omitempty"`
	Replace bool              `json:"replace,omitempty"`
}

func encodeCommand(typ string, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("meta: encode %s: %w", typ, err)
	}
	return json.Marshal(envelope{Type: typ, Version: cmdVersion, Body: b})
}

func decodeBody(env *envelope, v any) error {
	if err := json.Unmarshal(env.Body, v); err != nil {
		return fmt.Errorf("%w: %s: %v", errBadCommand, env.Type, err)
	}
	return nil
}

// uuid is a topic or cluster id. Its text form is Kafka's: 22 characters of
// unpadded base64url.
type uuid [16]byte

func (u uuid) String() string { return base64.RawURLEncoding.EncodeToString(u[:]) }

func (u uuid) MarshalText() ([]byte, error) {
	return base64.RawURLEncoding.AppendEncode(nil, u[:]), nil
}

func (u *uuid) UnmarshalText(b []byte) error {
	if len(b) != 22 {
		return fmt.Errorf("uuid %q: want 22 base64url characters", b)
	}
	if _, err := base64.RawURLEncoding.Decode(u[:], b); err != nil {
		return fmt.Errorf("uuid %q: %w", b, err)
	}
	return nil
}

// newUUID returns a random version-4 UUID, skipping the values Kafka reserves
// (all zeros, and 1 for the metadata topic) and those whose text starts with
// '-', which command-line tools would take for a flag. This is what Kafka's
// Uuid.randomUuid does.
func newUUID() uuid {
	for {
		var u uuid
		_, _ = rand.Read(u[:]) // never fails since Go 1.24
		u[6] = u[6]&0x0f | 0x40
		u[8] = u[8]&0x3f | 0x80
		if u != (uuid{}) && u != (uuid{15: 1}) && u.String()[0] != '-' {
			return u
		}
	}
}
