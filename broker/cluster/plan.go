package cluster

import (
	"slices"

	"github.com/sluice-io/sluice/broker/meta"
)

// The decisions of the quorum, as pure functions of what gossip shows and
// what the raft configuration holds, so they can be tested alone.

// bootstrapVoters decides whether a fresh node bootstraps raft, and with
// which voters. It waits until gossip shows expect alive controller-eligible
// nodes, none of which has raft state yet (one that has means a cluster
// exists: the newcomer waits for its leader to add it). The voters are the
// expect lowest ids, so every node of the group computes the same list; a
// node outside that list does not bootstrap and is added later.
func bootstrapVoters(self int32, members []Member, expect int) ([]meta.Server, bool) {
	if expect < 1 {
		return nil, false
	}
	var eligible []Member
	for _, m := range members {
		if !m.Alive() || !m.Eligible() {
			continue
		}
		if m.Bootstrapped {
			return nil, false
		}
		eligible = append(eligible, m)
	}
	if len(eligible) < expect {
		return nil, false
	}
	slices.SortFunc(eligible, func(a, b Member) int { return int(a.ID) - int(b.ID) })
	eligible = eligible[:expect]
	var voters []meta.Server
	in := false
	for _, m := range eligible {
		in = in || m.ID == self
		voters = append(voters, meta.Server{ID: m.ID, Addr: m.Raft, Voter: true})
	}
	if !in {
		return nil, false
	}
	return voters, true
}

// changeKind is what the leader does to the raft configuration.
type changeKind int

const (
	addServer changeKind = iota + 1 // add, promote, or move to a new address
	removeServer
)

type change struct {
	kind   changeKind
	server meta.Server
}

// planChanges is the leader's reconciliation of gossip with the raft
// configuration: alive controller-eligible members missing from it are added
// (as voters while there are fewer than expect voters, else as non-voters),
// non-voters are promoted while voters are short, a member that moved its
// raft address is re-added at the new one, and members that left gracefully
// are removed. Dead members stay: they may come back. The leader never
// removes itself here (it hands leadership over before it leaves).
func planChanges(self int32, members []Member, servers []meta.Server, expect int) []change {
	inConfig := map[int32]meta.Server{}
	voters := 0
	for _, s := range servers {
		inConfig[s.ID] = s
		if s.Voter {
			voters++
		}
	}
	var out []change
	for _, m := range members {
		s, ok := inConfig[m.ID]
		switch {
		case m.State == StateLeft && ok && m.ID != self:
			out = append(out, change{removeServer, s})
			if s.Voter {
				voters--
			}
		case !m.Alive() || !m.Eligible() || m.Raft == "":
		case !ok:
			voter := voters < expect
			if voter {
				voters++
			}
			out = append(out, change{addServer, meta.Server{ID: m.ID, Addr: m.Raft, Voter: voter}})
		case s.Addr != m.Raft:
			out = append(out, change{addServer, meta.Server{ID: m.ID, Addr: m.Raft, Voter: s.Voter}})
		case !s.Voter && voters < expect:
			voters++
			out = append(out, change{addServer, meta.Server{ID: m.ID, Addr: m.Raft, Voter: true}})
		}
	}
	return out
}
