package meta

import (
	"bytes"
	"testing"

	"github.com/hashicorp/raft"
)

// Blocks never overlap, across a restart that replays the log and one that
// restores a snapshot.
func TestProducerIDBlocksSurviveRestart(t *testing.T) {
	s := openStore(t, Config{Dir: t.TempDir()})
	var blocks []ProducerIDBlock
	alloc := func(size int64) {
		t.Helper()
		b, err := s.AllocateProducerIDs(size)
		if err != nil {
			t.Fatal(err)
		}
		if b.Size != size {
			t.Fatalf("block %+v, asked for %d", b, size)
		}
		for _, o := range blocks {
			if b.First < o.First+o.Size && o.First < b.First+b.Size {
				t.Fatalf("block %+v overlaps %+v", b, o)
			}
		}
		blocks = append(blocks, b)
	}
	alloc(1000)
	alloc(7)
	s = reopen(t, s)
	alloc(1000)
	if err := s.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	alloc(1)
	if got, want := s.NextProducerID(), int64(2008); got != want {
		t.Errorf("next producer id = %d, want %d", got, want)
	}
}

func TestProducerIDBlockRejects(t *testing.T) {
	f, _ := replay(t, sampleLog(t))
	f.Apply(&raft.Log{Index: 50, Type: raft.LogCommand, Data: cmd(t, cmdAllocateProducerIDs, allocateProducerIDsCmd{Size: 10})})
	before := f.cur.Load()
	if before.nextProducerID != 10 {
		t.Fatalf("next producer id %d, want 10", before.nextProducerID)
	}
	for _, size := range []int64{0, -5, MaxProducerIDBlock + 1} {
		resp := f.Apply(&raft.Log{Index: 51, Type: raft.LogCommand, Data: cmd(t, cmdAllocateProducerIDs, allocateProducerIDsCmd{Size: size})})
		if err, _ := resp.(error); err == nil || f.cur.Load() != before {
			t.Errorf("size %d: Apply = %v, state changed %v", size, resp, f.cur.Load() != before)
		}
	}

	// The high-water mark is part of the snapshot.
	snap, _ := f.Snapshot()
	var sink bufSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	g := newFSM(nil)
	if err := g.Restore(nopCloser{bytes.NewReader(sink.Bytes())}); err != nil {
		t.Fatal(err)
	}
	if got := g.cur.Load().nextProducerID; got != 10 {
		t.Errorf("restored next producer id %d, want 10", got)
	}
	if err := g.Restore(nopCloser{bytes.NewReader([]byte(`{"format":1,"next_producer_id":-1}`))}); err == nil {
		t.Error("negative next producer id restored")
	}
}
