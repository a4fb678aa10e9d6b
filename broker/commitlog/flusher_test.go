package commitlog

import (
	"sync"
	"testing"
)

func TestFlushAndFlusher(t *testing.T) {
	l := openLog(t, t.TempDir(), smallConfig(), 0, 0)
	defer l.Close()
	appendOne(t, l, makeBatch([][2][]byte{kv("a", "1"), kv("b", "2")}, 1, 0))
	if n := l.UnsyncedRecords(); n != 2 {
		t.Fatalf("unsynced %d", n)
	}
	if err := l.Flush(); err != nil || l.UnsyncedRecords() != 0 || l.DurableOffset() != 2 {
		t.Fatalf("flush: %v, unsynced %d, durable %d", err, l.UnsyncedRecords(), l.DurableOffset())
	}
	f := NewFlusher()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				b := makeBatch([][2][]byte{kv("k", "v")}, int64(i), 0)
				h, _ := Validate(b)
				base, err := l.Append([]Batch{{b, h}}, 1)
				if err != nil {
					t.Error(err)
					return
				}
				if err := <-f.Sync(l, base+1); err != nil {
					t.Error(err)
				}
				if d := l.DurableOffset(); d < base+1 {
					t.Errorf("durable %d after sync to %d", d, base+1)
				}
			}
		}()
	}
	wg.Wait()
	f.Close()
	f.Close()
	if err := <-f.Sync(l, l.EndOffset()+1); err == nil {
		t.Fatal("sync after close succeeded")
	}
	if l.UnsyncedRecords() != 0 {
		t.Fatalf("unsynced %d after syncs", l.UnsyncedRecords())
	}
}
