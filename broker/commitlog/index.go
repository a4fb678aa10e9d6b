package commitlog

import (
	"encoding/binary"
	"fmt"
	"os"
	"sort"
)

// indexEntry is one sparse index point: the batch at file position pos has
// its last offset at base+relOffset, and maxTs is the largest timestamp seen
// in the segment up to and including that batch. The same entries are
// written as Kafka's .index (relative offset u32, position u32) and
// .timeindex (timestamp i64, relative offset u32) files.
type indexEntry struct {
	relOffset uint32
	pos       uint32
	maxTs     int64
}

// lookupOffset returns the file position of the last indexed batch whose
// last offset is below target: scanning from there finds the batch holding
// target. It returns 0 when no entry qualifies.
func lookupOffset(idx []indexEntry, rel uint32) int64 {
	i := sort.Search(len(idx), func(i int) bool { return idx[i].relOffset >= rel })
	if i == 0 {
		return 0
	}
	return int64(idx[i-1].pos)
}

// lookupTime returns the position to scan from for the first batch with a
// max timestamp at or after ts.
func lookupTime(idx []indexEntry, ts int64) int64 {
	i := sort.Search(len(idx), func(i int) bool { return idx[i].maxTs >= ts })
	if i == 0 {
		return 0
	}
	return int64(idx[i-1].pos)
}

func indexPath(dir string, base int64) string     { return segPath(dir, base, ".index") }
func timeIndexPath(dir string, base int64) string { return segPath(dir, base, ".timeindex") }

// writeIndexes writes both index files for a segment and, with sync, fsyncs
// them.
func writeIndexes(dir string, base int64, idx []indexEntry, sync bool) error {
	return writeIndexFiles(indexPath(dir, base), timeIndexPath(dir, base), idx, sync)
}

// writeIndexFiles writes the .index and .timeindex contents for idx to the
// given paths.
func writeIndexFiles(offsetPath, timePath string, idx []indexEntry, sync bool) error {
	ob := make([]byte, 0, 8*len(idx))
	tb := make([]byte, 0, 12*len(idx))
	lastTs := int64(-1 << 63)
	for _, e := range idx {
		ob = binary.BigEndian.AppendUint32(ob, e.relOffset)
		ob = binary.BigEndian.AppendUint32(ob, e.pos)
		if e.maxTs > lastTs {
			tb = binary.BigEndian.AppendUint64(tb, uint64(e.maxTs))
			tb = binary.BigEndian.AppendUint32(tb, e.relOffset)
			lastTs = e.maxTs
		}
	}
	if err := writeFile(offsetPath, ob, sync); err != nil {
		return err
	}
	return writeFile(timePath, tb, sync)
}

// readIndexes loads a segment's index files. Any inconsistency (missing
// file, odd size, entries out of order or beyond the segment) is reported
// so the caller rebuilds the index by scanning the segment.
func readIndexes(dir string, base, segSize int64) ([]indexEntry, error) {
	ob, err := os.ReadFile(indexPath(dir, base))
	if err != nil {
		return nil, err
	}
	tb, err := os.ReadFile(timeIndexPath(dir, base))
	if err != nil {
		return nil, err
	}
	if len(ob)%8 != 0 || len(tb)%12 != 0 {
		return nil, fmt.Errorf("index sizes %d/%d are not whole entries", len(ob), len(tb))
	}
	idx := make([]indexEntry, len(ob)/8)
	for i := range idx {
		idx[i].relOffset = binary.BigEndian.Uint32(ob[i*8:])
		idx[i].pos = binary.BigEndian.Uint32(ob[i*8+4:])
		if int64(idx[i].pos) >= segSize || (i > 0 && (idx[i].relOffset <= idx[i-1].relOffset || idx[i].pos <= idx[i-1].pos)) {
			return nil, fmt.Errorf("index entry %d out of order or past the segment", i)
		}
	}
	// Spread the time index's running maximum over the offset entries.
	ti, maxTs := 0, int64(-1)
	for i := range idx {
		for ti+12 <= len(tb) && binary.BigEndian.Uint32(tb[ti+8:]) <= idx[i].relOffset {
			if ts := int64(binary.BigEndian.Uint64(tb[ti:])); ts > maxTs {
				maxTs = ts
			}
			ti += 12
		}
		idx[i].maxTs = maxTs
	}
	return idx, nil
}

func writeFile(path string, b []byte, sync bool) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
