package commitlog

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// appendEpochs appends one two-record batch per epoch and returns the base
// offsets.
func appendEpochs(t *testing.T, l *Log, epochs ...int32) []int64 {
	t.Helper()
	var bases []int64
	for _, e := range epochs {
		b := makeBatch([][2][]byte{kv("k", "a"), kv("k", "b")}, 1000, 0)
		base, err := l.Append([]Batch{toBatch(t, b)}, e)
		if err != nil {
			t.Fatal(err)
		}
		bases = append(bases, base)
	}
	return bases
}

type epochQuery struct {
	epoch     int32
	wantEpoch int32
	wantEnd   int64
}

func checkEpochQueries(t *testing.T, l *Log, qs []epochQuery) {
	t.Helper()
	for _, q := range qs {
		if e, off := l.EndOffsetForEpoch(q.epoch); e != q.wantEpoch || off != q.wantEnd {
			t.Errorf("EndOffsetForEpoch(%d) = (%d, %d), want (%d, %d)", q.epoch, e, off, q.wantEpoch, q.wantEnd)
		}
	}
}

func epochFile(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, epochCheckpointName))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEndOffsetForEpoch(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallConfig(), 0, 0)
	bases := appendEpochs(t, l, 0, 0, 2, 2, 5) // epochs start at 0, 4 and 8; log end 10
	if l.LatestEpoch() != 5 {
		t.Fatalf("LatestEpoch = %d", l.LatestEpoch())
	}
	if bases[2] != 4 || bases[4] != 8 {
		t.Fatalf("bases %v", bases)
	}
	qs := []epochQuery{
		{-1, -1, -1}, // undefined
		{0, 0, 4},
		{1, 0, 4}, // floor is 0, ends where 2 starts
		{2, 2, 8},
		{3, 2, 8},
		{5, 5, 10}, // the latest: the log end
		{6, -1, -1},
	}
	checkEpochQueries(t, l, qs)
	if got, want := epochFile(t, dir), "0\n3\n0 0\n2 4\n5 8\n"; got != want {
		t.Errorf("checkpoint file %q, want %q", got, want)
	}

	// A new leader's epoch: the previous one now ends at the log end.
	if err := l.AssignEpoch(7); err != nil {
		t.Fatal(err)
	}
	if err := l.AssignEpoch(6); err != nil { // below the latest: no-op
		t.Fatal(err)
	}
	qs[5] = epochQuery{5, 5, 10}
	qs[6] = epochQuery{6, 5, 10}
	qs = append(qs, epochQuery{7, 7, 10}, epochQuery{8, -1, -1})
	checkEpochQueries(t, l, qs)
	appendEpochs(t, l, 7) // offsets 10-11
	qs[len(qs)-2] = epochQuery{7, 7, 12}
	checkEpochQueries(t, l, qs)

	// Persisted across Close and Open.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, smallConfig(), 12, 0)
	checkEpochQueries(t, l, qs)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Rebuilt from the batches when the file is gone or garbage.
	for _, spoil := range []func(){
		func() { os.Remove(filepath.Join(dir, epochCheckpointName)) },
		func() { os.WriteFile(filepath.Join(dir, epochCheckpointName), []byte("0\n3\n5 1\nx"), 0o644) },
	} {
		spoil()
		l = openLog(t, dir, smallConfig(), 12, 0)
		checkEpochQueries(t, l, qs)
		if got, want := epochFile(t, dir), "0\n4\n0 0\n2 4\n5 8\n7 10\n"; got != want {
			t.Errorf("rebuilt checkpoint file %q, want %q", got, want)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// An epoch assigned at the log end with nothing written in it is dropped
// on open, as Kafka's truncateFromEnd(log end) after recovery does; so are
// entries past a log end lost in a crash.
func TestEpochsTrimmedOnOpen(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallConfig(), 0, 0)
	appendEpochs(t, l, 1, 1)
	if err := l.AssignEpoch(4); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, epochCheckpointName), []byte("0\n3\n1 0\n4 4\n6 9\n"), 0o644)
	l = openLog(t, dir, smallConfig(), 4, 0)
	defer l.Close()
	if l.LatestEpoch() != 1 {
		t.Fatalf("LatestEpoch %d after open, want 1", l.LatestEpoch())
	}
	if got, want := epochFile(t, dir), "0\n1\n1 0\n"; got != want {
		t.Errorf("checkpoint file %q, want %q", got, want)
	}
}

func TestEpochsFollowLogStart(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig()
	l := openLog(t, dir, cfg, 0, 0)
	defer l.Close()
	appendEpochs(t, l, 2, 2, 3, 3, 3, 6) // 2@0, 3@4, 6@10
	if _, err := l.DeleteRecordsBefore(5, -1); err != nil {
		t.Fatal(err)
	}
	want := []epochEntry{{3, 5}, {6, 10}}
	if !slices.Equal(l.epochs.entries, want) {
		t.Fatalf("epochs after DeleteRecordsBefore(5): %v, want %v", l.epochs.entries, want)
	}
	checkEpochQueries(t, l, []epochQuery{
		{2, 2, 5}, // below the earliest: the earliest's start (Kafka)
		{3, 3, 10},
		{6, 6, 12},
	})
	// Retention deleting whole segments moves the start too.
	for range 150 {
		appendEpochs(t, l, 8)
	}
	if len(l.segments) < 3 {
		t.Fatalf("only %d segments", len(l.segments))
	}
	cfg.RetentionBytes = 1
	l.SetConfig(cfg)
	if _, err := l.EnforceRetention(0); err != nil {
		t.Fatal(err)
	}
	start := l.StartOffset()
	if start <= 12 {
		t.Fatalf("retention left the start at %d", start)
	}
	want = []epochEntry{{8, start}}
	if !slices.Equal(l.epochs.entries, want) {
		t.Fatalf("epochs after retention: %v, want %v", l.epochs.entries, want)
	}
	if got, wantF := epochFile(t, dir), "0\n1\n8 "+strconv.FormatInt(start, 10)+"\n"; got != wantF {
		t.Errorf("checkpoint file %q, want %q", got, wantF)
	}
}

// The rebuild from batch headers finds every epoch the appends recorded,
// however they fall across segments and index entries.
func TestEpochRebuildMatchesAppends(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig()
	cfg.SegmentBytes = 2048
	l := openLog(t, dir, cfg, 0, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	epoch := int32(0)
	for range 400 {
		if rng.IntN(12) == 0 {
			epoch += 1 + rng.Int32N(3)
		}
		appendEpochs(t, l, epoch)
	}
	want := slices.Clone(l.epochs.entries)
	if len(want) < 20 || len(l.segments) < 8 {
		t.Fatalf("%d epochs over %d segments: too few", len(want), len(l.segments))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, epochCheckpointName))
	l = openLog(t, dir, cfg, 0, 0)
	defer l.Close()
	if !slices.Equal(l.epochs.entries, want) {
		t.Fatalf("rebuilt epochs\n%v\nwant\n%v", l.epochs.entries, want)
	}
}
