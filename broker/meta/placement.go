package meta

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
)

// Replica placement, Kafka's scheme: brokers are listed alternating between
// racks; partition p's first replica (its preferred leader) is broker
// (p+start) mod n, and the others follow it at a distance that shifts by one
// every n partitions, so leaders and followers both spread evenly and two
// partitions rarely share the same replica set. A replica whose rack is
// already used is skipped while brokers on unused racks remain.

// ErrReplicationFactor is a replication factor the brokers cannot hold.
var ErrReplicationFactor = fmt.Errorf("meta: replication factor larger than the available brokers")

// Place returns the replicas of count partitions, rf each, over brokers.
// start and shift choose where the pattern begins (random in production,
// fixed in tests).
func Place(brokers []Broker, count int32, rf int, start, shift int) ([][]int32, error) {
	n := len(brokers)
	if rf < 1 || rf > n {
		return nil, fmt.Errorf("%w: %d replicas over %d brokers", ErrReplicationFactor, rf, n)
	}
	list := rackAlternated(brokers)
	out := make([][]int32, count)
	ids := make([]int32, 0, int(count)*rf)
	allRacks := countRacks(list)
	for p := range int(count) {
		if p > 0 && p%n == 0 {
			shift++
		}
		first := (p + start) % n
		picked := []int{first}
		racks := map[string]bool{list[first].Rack: true}
		for pass := 0; pass < 2 && len(picked) < rf; pass++ {
			for j := 0; j < n-1 && len(picked) < rf; j++ {
				idx := (first + 1 + (shift+j)%(n-1)) % n
				if slices.Contains(picked, idx) {
					continue
				}
				if pass == 0 && racks[list[idx].Rack] && len(racks) < allRacks {
					continue
				}
				picked = append(picked, idx)
				racks[list[idx].Rack] = true
			}
		}
		start := len(ids)
		for _, i := range picked {
			ids = append(ids, list[i].ID)
		}
		out[p] = ids[start:len(ids):len(ids)]
	}
	return out, nil
}

// PlaceRandom is Place with a random start and shift.
func PlaceRandom(brokers []Broker, count int32, rf int) ([][]int32, error) {
	if len(brokers) == 0 {
		return nil, fmt.Errorf("%w: no brokers", ErrReplicationFactor)
	}
	return Place(brokers, count, rf, rand.IntN(len(brokers)), rand.IntN(len(brokers)))
}

// rackAlternated orders brokers by id within each rack and then takes one
// from each rack in turn: [a1 b1 c1 a2 b2 c2 ...].
func rackAlternated(brokers []Broker) []Broker {
	byRack := map[string][]Broker{}
	for _, b := range brokers {
		byRack[b.Rack] = append(byRack[b.Rack], b)
	}
	racks := make([]string, 0, len(byRack))
	for r, bs := range byRack {
		racks = append(racks, r)
		slices.SortFunc(bs, func(a, b Broker) int { return cmp.Compare(a.ID, b.ID) })
	}
	slices.Sort(racks)
	out := make([]Broker, 0, len(brokers))
	for i := 0; len(out) < len(brokers); i++ {
		for _, r := range racks {
			if i < len(byRack[r]) {
				out = append(out, byRack[r][i])
			}
		}
	}
	return out
}

func countRacks(list []Broker) int {
	seen := map[string]bool{}
	for _, b := range list {
		seen[b.Rack] = true
	}
	return len(seen)
}
