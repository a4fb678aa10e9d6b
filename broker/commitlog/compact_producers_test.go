package commitlog

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Compaction keeps the last batch of each tracked producer, emptied when
// all its records are superseded, so the producer's state can be rebuilt
// from the log; a producer whose state expired loses it.
func TestCompactKeepsProducersLastBatch(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, compactConfig(), 0, 0)
	idem := func(pid int64, seq int32, key string) []byte {
		return buildBatch(batchSpec{records: [][2][]byte{kv(key, "idem")}, ts: []int64{1000}, pid: pid, seq: seq, codec: kgo.CodecZstd})
	}
	appendOne(t, l, idem(5, 0, "a"))                                                           // 0: superseded, goes
	appendOne(t, l, idem(5, 1, "b"))                                                           // 1: superseded, kept empty
	appendOne(t, l, idem(6, 0, "c"))                                                           // 2: producer 6 expires, goes
	appendOne(t, l, makeBatch([][2][]byte{kv("a", "x"), kv("b", "x"), kv("c", "x")}, 2000, 0)) // 3-5
	l.Roll()
	appendOne(t, l, makeBatch([][2][]byte{kv("d", "active")}, 3000, 0))
	l.mu.Lock()
	l.producers[6].lastSeenMs -= 3_600_000 // producer 6 went silent an hour ago
	l.mu.Unlock()
	if n := l.ExpireProducers(time.Now().UnixMilli(), 1_800_000); n != 1 {
		t.Fatalf("expired %d producers, want producer 6 alone", n)
	}

	if _, err := l.Compact(1 << 40); err != nil {
		t.Fatal(err)
	}
	var got []Header
	l.ReadBatches(0, func(_ []byte, h Header) bool { got = append(got, h); return true })
	if len(got) != 3 || got[0].BaseOffset != 1 || got[0].ProducerID != 5 || got[0].NumRecords != 0 ||
		got[0].BaseSequence != 1 || got[0].LastOffset() != 1 || got[0].Compression() != 0 {
		t.Fatalf("batches after compaction: %+v", got)
	}
	if recs := readRecords(t, l, 0); len(recs) != 4 || recs[0].off != 3 {
		t.Fatalf("records after compaction: %+v", recs)
	}

	// Without snapshots, the state comes back from the emptied batch.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, off := range mustSnapshots(t, dir) {
		os.Remove(segPath(dir, off, snapshotExt))
	}
	l = openLog(t, dir, compactConfig(), 0, 0)
	defer l.Close()
	if base, err := l.Append([]Batch{toBatch(t, idem(5, 1, "b"))}, 0); !errors.Is(err, ErrDuplicateBatch) || base != 1 {
		t.Errorf("retry of producer 5's last batch after compaction and restart: base %d, err %v", base, err)
	}
	if _, ok := l.Producer(6); ok {
		t.Error("producer 6 rebuilt from a batch compaction should have dropped")
	}
}
