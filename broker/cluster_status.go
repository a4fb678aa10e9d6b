package broker

import "github.com/sluice-io/sluice/broker/cluster"

// ClusterStatus is what `sluice cluster info` shows beyond Kafka's Metadata:
// the gossip members and the raft configuration as this node sees them.
type ClusterStatus struct {
	NodeID     int32           `json:"node_id"`
	ClusterID  string          `json:"cluster_id"`
	RaftLeader int32           `json:"raft_leader"` // -1: none known
	Members    []ClusterMember `json:"members"`
	Voters     []int32         `json:"voters"`
	NonVoters  []int32         `json:"non_voters"`
}

// ClusterMember is one gossip member.
type ClusterMember struct {
	ID     int32    `json:"id"`
	Kafka  string   `json:"kafka"`
	Raft   string   `json:"raft"`
	Gossip string   `json:"gossip"`
	State  string   `json:"state"`
	Roles  []string `json:"roles,omitempty"`
	Rack   string   `json:"rack,omitempty"`
	// BrokerEpoch is the broker epoch of the member's running process, 0
	// while that process is not registered yet; Fenced is set while the
	// controller takes a restarted broker's old incarnation out.
	BrokerEpoch int64 `json:"broker_epoch,omitempty"`
	Fenced      bool  `json:"fenced,omitempty"`
	incarnation string
}

// ClusterStatus returns this node's view of the cluster. A standalone node
// is its only member.
func (b *Broker) ClusterStatus() (ClusterStatus, error) {
	st := ClusterStatus{NodeID: b.cfg.NodeID, ClusterID: b.meta.ClusterID(), RaftLeader: b.controllerID(),
		Members: []ClusterMember{}, Voters: []int32{}, NonVoters: []int32{}}
	if b.gossip == nil {
		st.Members = append(st.Members, ClusterMember{ID: b.cfg.NodeID, Kafka: b.Addr(), Raft: b.meta.RaftAddr(),
			State: string(cluster.StateAlive), Roles: b.cfg.Roles, Rack: b.cfg.Rack})
	} else {
		for _, m := range b.gossip.Members() {
			st.Members = append(st.Members, ClusterMember{ID: m.ID, Kafka: m.Kafka, Raft: m.Raft, Gossip: m.Addr,
				State: string(m.State), Roles: m.Roles, Rack: m.Rack, incarnation: m.Incarnation})
		}
	}
	for i, m := range st.Members {
		if r, ok := b.meta.Broker(m.ID); ok && m.incarnation != "" && r.Incarnation == m.incarnation {
			st.Members[i].BrokerEpoch, st.Members[i].Fenced = r.Epoch, r.Fenced
		}
	}
	servers, err := b.meta.Servers()
	if err != nil {
		return st, err
	}
	for _, s := range servers {
		if s.Voter {
			st.Voters = append(st.Voters, s.ID)
		} else {
			st.NonVoters = append(st.NonVoters, s.ID)
		}
	}
	return st, nil
}
