package commitlog

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-io/sluice/internal/pagecache"
)

// TestUncachedFlushDropsSyncedPages: with SetUncached a Flush leaves
// (nearly) none of the pages it synced in the page cache, over several
// flushes whose ranges do not start on page boundaries; without it they
// all stay. The records read back the same either way.
func TestUncachedFlushDropsSyncedPages(t *testing.T) {
	if !pagecache.Droppable(t.TempDir()) {
		t.Skip("tmpfs pages cannot be dropped from the page cache")
	}
	for _, uncached := range []bool{false, true} {
		t.Run(fmt.Sprintf("uncached=%v", uncached), func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir, DefaultConfig(), 0, 0)
			defer l.Close()
			l.SetUncached(uncached)
			value := bytes.Repeat([]byte("v"), 3000) // batches not page-aligned
			for flush := range 8 {
				for i := range 40 {
					appendOne(t, l, makeBatch([][2][]byte{kv(fmt.Sprint(flush, i), string(value))}, 1000, 0))
				}
				if err := l.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			resident, total, err := pagecache.Resident(filepath.Join(dir, fmt.Sprintf("%020d.log", 0)))
			if err != nil {
				t.Fatal(err)
			}
			if total < 8*40*3000/os.Getpagesize() {
				t.Fatalf("segment has %d pages, want the 8 flushes' worth", total)
			}
			if uncached && resident > 1 { // the last page, partly unwritten
				t.Fatalf("%d of %d pages still cached after uncached flushes", resident, total)
			}
			if !uncached && resident < total {
				t.Fatalf("only %d of %d pages cached without SetUncached", resident, total)
			}
			if got := len(readRecords(t, l, 0)); got != 8*40 {
				t.Fatalf("read back %d records, want %d", got, 8*40)
			}
		})
	}
}
