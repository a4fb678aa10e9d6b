package e2e

import (
	"fmt"
	"slices"
	"strings"
)

// A Jepsen-style check of a produce/consume history: every record a
// producer saw acknowledged must be read back exactly once, at the offset
// it was acknowledged at, and each producer's records must appear in the
// order it produced them within a partition.

// ackedRecord is one acknowledged write.
type ackedRecord struct {
	producer  int
	seq       int
	partition int32
	offset    int64
}

// readRecord is one record read back.
type readRecord struct {
	value     string
	partition int32
	offset    int64
}

// historyReport counts what went wrong; all zero is a pass.
type historyReport struct {
	Acked, Read                 int
	Lost, Duplicated, Reordered int
	Moved                       int // read at another offset than acknowledged
	Examples                    []string
}

func (r historyReport) ok() bool {
	return r.Lost == 0 && r.Duplicated == 0 && r.Reordered == 0 && r.Moved == 0
}

func (r historyReport) String() string {
	return fmt.Sprintf("acked %d read %d: lost %d duplicated %d reordered %d moved %d; %s",
		r.Acked, r.Read, r.Lost, r.Duplicated, r.Reordered, r.Moved, strings.Join(r.Examples, "; "))
}

func recordValue(producer, seq int) string { return fmt.Sprintf("p%d-%08d", producer, seq) }

// checkHistory compares the acknowledged writes with what was read.
func checkHistory(acked []ackedRecord, read []readRecord) historyReport {
	rep := historyReport{Acked: len(acked), Read: len(read)}
	note := func(f string, a ...any) {
		if len(rep.Examples) < 8 {
			rep.Examples = append(rep.Examples, fmt.Sprintf(f, a...))
		}
	}
	seen := map[string][]readRecord{}
	for _, r := range read {
		seen[r.value] = append(seen[r.value], r)
	}
	for v, rs := range seen {
		if len(rs) > 1 {
			rep.Duplicated += len(rs) - 1
			note("%s read %d times", v, len(rs))
		}
	}
	for _, a := range acked {
		v := recordValue(a.producer, a.seq)
		rs := seen[v]
		switch {
		case len(rs) == 0:
			rep.Lost++
			note("%s (acked at %d/%d) lost", v, a.partition, a.offset)
		case rs[0].partition != a.partition || rs[0].offset != a.offset:
			rep.Moved++
			note("%s acked at %d/%d, read at %d/%d", v, a.partition, a.offset, rs[0].partition, rs[0].offset)
		}
	}
	// Per producer and partition, sequence numbers must grow with offsets.
	type key struct {
		producer  int
		partition int32
	}
	last := map[key]int{}
	sorted := slices.Clone(read)
	slices.SortFunc(sorted, func(a, b readRecord) int {
		if a.partition != b.partition {
			return int(a.partition - b.partition)
		}
		return int(a.offset - b.offset)
	})
	for _, r := range sorted {
		var prod, seq int
		if _, err := fmt.Sscanf(r.value, "p%d-%d", &prod, &seq); err != nil {
			continue
		}
		k := key{prod, r.partition}
		if prev, ok := last[k]; ok && seq <= prev {
			rep.Reordered++
			note("%s at %d/%d after seq %d", r.value, r.partition, r.offset, prev)
		}
		last[k] = seq
	}
	return rep
}
