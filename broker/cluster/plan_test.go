package cluster

import (
	"fmt"
	"slices"
	"testing"

	"github.com/sluice-io/sluice/broker/meta"
)

func mem(id int32, st State, boot bool) Member {
	return Member{ID: id, Kafka: fmt.Sprintf("127.0.0.1:%d", 9090+id), Raft: fmt.Sprintf("127.0.0.1:%d", 7940+id),
		Roles: []string{RoleBroker}, State: st, Bootstrapped: boot}
}

func voter(id int32) meta.Server {
	return meta.Server{ID: id, Addr: fmt.Sprintf("127.0.0.1:%d", 7940+id), Voter: true}
}

func nonvoter(id int32) meta.Server { s := voter(id); s.Voter = false; return s }

func TestBootstrapVoters(t *testing.T) {
	client := mem(9, StateAlive, false)
	client.Roles = []string{"connect"}
	tests := []struct {
		name    string
		self    int32
		members []Member
		expect  int
		want    []meta.Server // nil: do not bootstrap
	}{
		{"waits for expect", 1, []Member{mem(1, StateAlive, false), mem(2, StateAlive, false)}, 3, nil},
		{"three of three", 2, []Member{mem(3, StateAlive, false), mem(1, StateAlive, false), mem(2, StateAlive, false)}, 3,
			[]meta.Server{voter(1), voter(2), voter(3)}},
		{"dead ones do not count", 1, []Member{mem(1, StateAlive, false), mem(2, StateAlive, false), mem(3, StateDead, false)}, 3, nil},
		{"non-brokers do not count", 1, []Member{mem(1, StateAlive, false), mem(2, StateAlive, false), client}, 3, nil},
		{"an existing cluster is joined, not bootstrapped", 4,
			[]Member{mem(1, StateAlive, true), mem(2, StateAlive, true), mem(3, StateAlive, true), mem(4, StateAlive, false)}, 3, nil},
		{"lowest ids are the voters", 1,
			[]Member{mem(4, StateAlive, false), mem(2, StateAlive, false), mem(1, StateAlive, false)}, 2, []meta.Server{voter(1), voter(2)}},
		{"a node outside the voters waits", 4,
			[]Member{mem(4, StateAlive, false), mem(2, StateAlive, false), mem(1, StateAlive, false)}, 2, nil},
		{"expect 0 never", 1, []Member{mem(1, StateAlive, false)}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := bootstrapVoters(tt.self, tt.members, tt.expect)
			if ok != (tt.want != nil) || !slices.Equal(got, tt.want) {
				t.Fatalf("bootstrapVoters = %v, %v; want %v", got, ok, tt.want)
			}
		})
	}
}

func TestPlanChanges(t *testing.T) {
	moved := mem(2, StateAlive, true)
	moved.Raft = "127.0.0.1:1234"
	tests := []struct {
		name    string
		members []Member
		servers []meta.Server
		expect  int
		want    []change
	}{
		{"in step: nothing", []Member{mem(1, StateAlive, true), mem(2, StateAlive, true)},
			[]meta.Server{voter(1), voter(2)}, 3, nil},
		{"a newcomer is a voter while voters are short",
			[]Member{mem(1, StateAlive, true), mem(2, StateAlive, true), mem(3, StateAlive, false)},
			[]meta.Server{voter(1), voter(2)}, 3, []change{{addServer, voter(3)}}},
		{"beyond expect a newcomer is a non-voter",
			[]Member{mem(1, StateAlive, true), mem(2, StateAlive, true), mem(3, StateAlive, true), mem(4, StateAlive, false)},
			[]meta.Server{voter(1), voter(2), voter(3)}, 3, []change{{addServer, nonvoter(4)}}},
		{"a non-voter is promoted when a voter is missing",
			[]Member{mem(1, StateAlive, true), mem(2, StateAlive, true), mem(4, StateAlive, true)},
			[]meta.Server{voter(1), voter(2), nonvoter(4)}, 3, []change{{addServer, voter(4)}}},
		{"a member that left is removed",
			[]Member{mem(1, StateAlive, true), mem(2, StateLeft, true), mem(3, StateAlive, true)},
			[]meta.Server{voter(1), voter(2), voter(3)}, 3, []change{{removeServer, voter(2)}}},
		{"a dead member stays",
			[]Member{mem(1, StateAlive, true), mem(2, StateDead, true), mem(3, StateAlive, true)},
			[]meta.Server{voter(1), voter(2), voter(3)}, 3, nil},
		{"the leader never removes itself",
			[]Member{mem(1, StateLeft, true), mem(2, StateAlive, true)},
			[]meta.Server{voter(1), voter(2)}, 3, nil},
		{"a moved raft address is re-added with its suffrage",
			[]Member{mem(1, StateAlive, true), moved},
			[]meta.Server{voter(1), voter(2)}, 3, []change{{addServer, meta.Server{ID: 2, Addr: "127.0.0.1:1234", Voter: true}}}},
		{"expect 1 adds non-voters",
			[]Member{mem(1, StateAlive, true), mem(2, StateAlive, false)},
			[]meta.Server{voter(1)}, 1, []change{{addServer, nonvoter(2)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := planChanges(1, tt.members, tt.servers, tt.expect)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("planChanges = %+v; want %+v", got, tt.want)
			}
		})
	}
}
