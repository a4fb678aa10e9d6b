package commitlog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecoveredTailIsFsyncedByNextFlush: bytes past the recovery point were
// never known to be fsynced; after recovery the next Flush must fsync them
// before the durable offset (and so the checkpoint) moves over them.
func TestRecoveredTailIsFsyncedByNextFlush(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallConfig(), 0, 0)
	for i := 0; i < 5; i++ {
		appendOne(t, l, makeBatch([][2][]byte{kv("k", "v")}, 1000, 0))
	}
	// Crash without any flush: nothing is durable.
	l2 := openLog(t, dir, smallConfig(), 0, 0)
	defer l2.Close()
	if d := l2.DurableOffset(); d != 0 {
		t.Fatalf("durable offset %d right after recovering an unflushed log", d)
	}
	pending := 0
	for _, s := range l2.segments {
		if s.synced < s.size {
			pending++
		}
	}
	if pending == 0 {
		t.Fatal("recovered tail is marked fsynced; the next Flush would checkpoint it without an fsync")
	}
	if err := l2.Flush(); err != nil {
		t.Fatal(err)
	}
	if d := l2.DurableOffset(); d != 5 {
		t.Fatalf("durable offset %d after Flush, want 5", d)
	}
}

// TestRecoveryRefusesDamageBelowRecoveryPoint: a damaged batch in a segment
// that was fsynced (below the recovery point) is not a torn tail; recovery
// must not cut it and the later segments away.
func TestRecoveryRefusesDamageBelowRecoveryPoint(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallConfig(), 0, 0)
	for i := 0; i < 200; i++ {
		appendOne(t, l, makeBatch([][2][]byte{kv("key", strings.Repeat("v", 100))}, 1000, 0))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(segs) < 3 {
		t.Fatalf("want several segments, have %d", len(segs))
	}
	// Zero the last bytes of the first segment: a header there no longer
	// parses when recovery walks past the last index entry.
	f, err := os.OpenFile(segs[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	f.WriteAt(make([]byte, 200), st.Size()-200)
	f.Close()
	if _, err := Open(dir, smallConfig(), 200, 0, testLogger()); err == nil || !strings.Contains(err.Error(), "below the recovery point") {
		t.Fatalf("open with damage below the recovery point: %v", err)
	}
	after, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(after) != len(segs) {
		t.Fatalf("recovery removed segments: %d before, %d after", len(segs), len(after))
	}
}
