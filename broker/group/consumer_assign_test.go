package group

import (
	"fmt"
	"slices"
	"testing"
)

var assignTopics = []TopicInfo{{Name: "a", ID: idA, Partitions: 6}, {Name: "b", ID: idB, Partitions: 2}}

func subscriber(id string, topics ...string) *cmember {
	slices.Sort(topics)
	return &cmember{id: id, topics: topics}
}

// counts lists the number of partitions per member, in member order, and
// fails unless every subscribed partition is assigned exactly once to a
// subscriber of its topic.
func counts(t *testing.T, members []*cmember, out map[string]partSet) []int {
	t.Helper()
	seen := map[tp]string{}
	var n []int
	for _, m := range members {
		for p := range out[m.id] {
			if o, dup := seen[p]; dup {
				t.Fatalf("%v assigned to %s and %s", p, o, m.id)
			}
			seen[p] = m.id
			name := "a"
			if p.topic == idB {
				name = "b"
			}
			if !m.subscribes(name) {
				t.Fatalf("%s got %v of a topic it does not subscribe to", m.id, p)
			}
		}
		n = append(n, len(out[m.id]))
	}
	for _, ti := range assignTopics {
		for _, m := range members {
			if m.subscribes(ti.Name) {
				for p := int32(0); p < ti.Partitions; p++ {
					if _, ok := seen[tp{ti.ID, p}]; !ok {
						t.Fatalf("%s/%d not assigned", ti.Name, p)
					}
				}
				break
			}
		}
	}
	return n
}

func TestAssignors(t *testing.T) {
	cases := []struct {
		name     string
		assignor string
		members  []*cmember
		prev     map[string]partSet
		want     []int
	}{
		{"uniform homogeneous", "uniform", []*cmember{subscriber("m1", "a", "b"), subscriber("m2", "a", "b"), subscriber("m3", "a", "b")}, nil, []int{3, 3, 2}},
		{"uniform heterogeneous", "uniform", []*cmember{subscriber("m1", "a"), subscriber("m2", "b")}, nil, []int{6, 2}},
		{"uniform mixed", "uniform", []*cmember{subscriber("m1", "a", "b"), subscriber("m2", "b")}, nil, []int{6, 2}},
		{"uniform more members than partitions", "uniform", []*cmember{subscriber("m1", "b"), subscriber("m2", "b"), subscriber("m3", "b")}, nil, []int{1, 1, 0}},
		{"uniform rebalances a skewed target", "uniform", []*cmember{subscriber("m1", "a"), subscriber("m2", "a")},
			map[string]partSet{"m1": {{idA, 0}: 0, {idA, 1}: 0, {idA, 2}: 0, {idA, 3}: 0, {idA, 4}: 0, {idA, 5}: 0}}, []int{3, 3}},
		{"range", "range", []*cmember{subscriber("m1", "a", "b"), subscriber("m2", "a", "b")}, nil, []int{4, 4}},
		{"range uneven", "range", []*cmember{subscriber("m1", "a"), subscriber("m2", "a"), subscriber("m3", "a"), subscriber("m4", "a")}, nil, []int{2, 2, 1, 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := assignTarget(tc.assignor, slices.Clone(tc.members), slices.Clone(assignTopics), tc.prev)
			if got := counts(t, tc.members, out); !slices.Equal(got, tc.want) {
				t.Fatalf("partitions per member = %v, want %v", got, tc.want)
			}
			again := assignTarget(tc.assignor, slices.Clone(tc.members), slices.Clone(assignTopics), tc.prev)
			if fmt.Sprint(again) != fmt.Sprint(out) {
				t.Fatalf("not deterministic:\n%v\n%v", out, again)
			}
		})
	}
}

// A member joining a uniform group takes partitions only from the
// others' surplus: nobody loses a partition it did not have to.
func TestUniformIsSticky(t *testing.T) {
	two := []*cmember{subscriber("m1", "a", "b"), subscriber("m2", "a", "b")}
	prev := assignTarget("uniform", slices.Clone(two), slices.Clone(assignTopics), nil)
	three := append(slices.Clone(two), subscriber("m3", "a", "b"))
	next := assignTarget("uniform", slices.Clone(three), slices.Clone(assignTopics), prev)
	if got := counts(t, three, next); !slices.Equal(got, []int{3, 3, 2}) && !slices.Equal(got, []int{3, 2, 3}) && !slices.Equal(got, []int{2, 3, 3}) {
		t.Fatalf("partitions per member = %v", got)
	}
	for _, m := range two {
		moved := 0
		for p := range prev[m.id] {
			if _, ok := next[m.id][p]; !ok {
				moved++
			}
		}
		if len(prev[m.id])-moved != len(next[m.id]) {
			t.Errorf("%s gained partitions while giving some up: before %v after %v", m.id, prev[m.id], next[m.id])
		}
	}
	// Range keeps contiguous ranges: m1 gets the first half of "a".
	r := assignTarget("range", slices.Clone(two), slices.Clone(assignTopics), nil)
	for p := int32(0); p < 3; p++ {
		if _, ok := r["m1"][tp{idA, p}]; !ok {
			t.Fatalf("range gave m1 %v, want a/0-2", r["m1"])
		}
	}
}
