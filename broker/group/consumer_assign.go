package group

import (
	"slices"
	"strings"
)

// The server-side assignors of KIP-848 groups. Both are deterministic:
// the same members, subscriptions, topics and previous target give the
// same result, so a coordinator rebuilt from the log computes what the
// old one would have.

// Assignor names a member may ask for in ServerAssignor; the first is the
// default (group.consumer.assignors).
var assignors = []string{"uniform", "range"}

// assignTarget computes the target assignment of every member.
func assignTarget(name string, members []*cmember, topics []TopicInfo, prev map[string]partSet) map[string]partSet {
	slices.SortFunc(members, func(a, b *cmember) int { return strings.Compare(a.id, b.id) })
	slices.SortFunc(topics, func(a, b TopicInfo) int { return strings.Compare(a.Name, b.Name) })
	if name == "range" {
		return assignRange(members, topics)
	}
	return assignUniform(members, topics, prev)
}

// assignRange gives each topic's subscribers contiguous ranges of its
// partitions, the first ones one extra partition when they do not divide
// evenly (members ordered by id), so co-partitioned topics line up.
func assignRange(members []*cmember, topics []TopicInfo) map[string]partSet {
	out := make(map[string]partSet, len(members))
	for _, m := range members {
		out[m.id] = partSet{}
	}
	for _, t := range topics {
		var subs []*cmember
		for _, m := range members {
			if m.subscribes(t.Name) {
				subs = append(subs, m)
			}
		}
		if len(subs) == 0 {
			continue
		}
		n := int(t.Partitions)
		per, extra := n/len(subs), n%len(subs)
		p := 0
		for i, m := range subs {
			k := per
			if i < extra {
				k++
			}
			for ; k > 0; k-- {
				out[m.id][tp{t.ID, int32(p)}] = 0
				p++
			}
		}
	}
	return out
}

// assignUniform spreads the subscribed partitions as evenly as the
// subscriptions allow while moving as few as possible: a member keeps the
// partitions of its previous target it still subscribes to, new
// partitions go to the least loaded subscriber, and partitions then move
// from the most to the least loaded member until no move helps.
func assignUniform(members []*cmember, topics []TopicInfo, prev map[string]partSet) map[string]partSet {
	out := make(map[string]partSet, len(members))
	byID := make(map[string]*cmember, len(members))
	for _, m := range members {
		out[m.id] = partSet{}
		byID[m.id] = m
	}
	names := make(map[[16]byte]TopicInfo, len(topics))
	for _, t := range topics {
		names[t.ID] = t
	}
	taken := map[tp]bool{}
	for _, m := range members {
		for p := range prev[m.id] {
			t, ok := names[p.topic]
			if ok && p.part < t.Partitions && m.subscribes(t.Name) && !taken[p] {
				out[m.id][p] = 0
				taken[p] = true
			}
		}
	}
	// subscribers lists the members eligible for each topic.
	subscribers := make(map[[16]byte][]*cmember, len(topics))
	for _, t := range topics {
		for _, m := range members {
			if m.subscribes(t.Name) {
				subscribers[t.ID] = append(subscribers[t.ID], m)
			}
		}
	}
	least := func(topic [16]byte) *cmember {
		var best *cmember
		for _, m := range subscribers[topic] {
			if best == nil || len(out[m.id]) < len(out[best.id]) {
				best = m
			}
		}
		return best
	}
	for _, t := range topics {
		for i := int32(0); i < t.Partitions; i++ {
			p := tp{t.ID, i}
			if taken[p] {
				continue
			}
			if m := least(t.ID); m != nil {
				out[m.id][p] = 0
			}
		}
	}
	// Balance: each move lowers the sum of squared loads, so the loop
	// ends; the bound only guards against a bug turning it endless.
	total := 0
	for _, t := range topics {
		total += int(t.Partitions)
	}
	order := slices.Clone(members)
	for moves := 0; moves <= total*len(members); moves++ {
		slices.SortStableFunc(order, func(a, b *cmember) int { return len(out[b.id]) - len(out[a.id]) })
		if !moveOne(order, out, least) {
			break
		}
	}
	return out
}

// moveOne moves one partition from a member to an eligible member holding
// at least two fewer, trying the most loaded members first.
func moveOne(order []*cmember, out map[string]partSet, least func([16]byte) *cmember) bool {
	for _, a := range order {
		ps := make([]tp, 0, len(out[a.id]))
		for p := range out[a.id] {
			ps = append(ps, p)
		}
		// Give up the highest partitions first, deterministically.
		slices.SortFunc(ps, func(x, y tp) int {
			if c := compareID(y.topic, x.topic); c != 0 {
				return c
			}
			return int(y.part - x.part)
		})
		for _, p := range ps {
			b := least(p.topic)
			if b != nil && len(out[a.id])-len(out[b.id]) >= 2 {
				delete(out[a.id], p)
				out[b.id][p] = 0
				return true
			}
		}
	}
	return false
}
