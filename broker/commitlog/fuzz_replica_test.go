package commitlog

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// FuzzAppendReplica feeds a follower a fetch response's records garbled
// at a chosen position. AppendReplica must not panic, must append only
// whole valid batches at increasing offsets (the bytes it reports), and
// fail, if it does, with ErrCorruptBatch or ErrNotContiguous.
func FuzzAppendReplica(f *testing.F) {
	var clean []byte
	for i := range 4 {
		clean = append(clean, stamped(makeBatch([][2][]byte{kv("k", "v"), kv("k2", "value")}, int64(i), allCodecs[i%5]), int64(2*i), 1)...)
	}
	f.Add(uint16(0), []byte{})
	f.Add(uint16(8), []byte{0x7f, 0xff, 0xff, 0xff}) // length
	f.Add(uint16(8), []byte{0xff, 0xff, 0xff, 0xf0}) // negative length
	f.Add(uint16(16), []byte{1})                     // magic
	f.Add(uint16(0), []byte{0, 0, 0, 0, 0, 0, 0, 9}) // base offset
	f.Add(uint16(70), []byte("garbage"))
	f.Add(uint16(0xffff), clean[:HeaderSize+3]) // a torn batch after the clean ones
	f.Fuzz(func(t *testing.T, pos uint16, data []byte) {
		in := bytes.Clone(clean)
		at := min(int(pos), len(in))
		in = append(in[:at], append(data, in[min(at+len(data), len(in)):]...)...)
		l := openLog(t, t.TempDir(), smallConfig(), 0, 0)
		defer l.Close()
		n, err := l.AppendReplica(in)
		if err != nil && !errors.Is(err, ErrCorruptBatch) && !errors.Is(err, ErrNotContiguous) {
			t.Fatalf("unexpected error: %v", err)
		}
		if n < 0 || n > len(in) {
			t.Fatalf("consumed %d of %d bytes", n, len(in))
		}
		var got []byte
		next := int64(0)
		if err := l.ReadBatches(0, func(b []byte, h Header) bool {
			if _, err := Validate(b); err != nil || h.BaseOffset < next {
				t.Fatalf("stored batch at %d: %v (previous end %d)", h.BaseOffset, err, next)
			}
			next = h.LastOffset() + 1
			got = append(got, b...)
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, in[:n]) || next != l.EndOffset() {
			t.Fatalf("stored %d bytes ending at %d, reported %d, log end %d", len(got), next, n, l.EndOffset())
		}
	})
}

// stamped sets a test batch's base offset and leader epoch, as a leader's
// append does.
func stamped(b []byte, base int64, epoch int32) []byte {
	stamp(b, base, epoch)
	return b
}

// FuzzEpochCheckpoint parses arbitrary checkpoint files: no panic, and
// whatever parses is ordered and writes back to the same entries.
func FuzzEpochCheckpoint(f *testing.F) {
	f.Add([]byte("0\n3\n0 0\n2 4\n5 8\n"))
	f.Add([]byte("0\n0\n"))
	f.Add([]byte("0\n2\n5 8\n2 4\n"))
	f.Add([]byte("1\n1\n0 0\n"))
	f.Add([]byte("0\n99999999999\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := readEpochCheckpoint(b)
		if err != nil {
			return
		}
		for i := 1; i < len(entries); i++ {
			if entries[i].epoch <= entries[i-1].epoch || entries[i].start < entries[i-1].start {
				t.Fatalf("entries out of order: %v", entries)
			}
		}
		dir := t.TempDir()
		l := &Log{dir: dir, logger: testLogger()}
		l.epochs.set(entries)
		if err := l.saveEpochs(); err != nil {
			t.Fatal(err)
		}
		again, err := readEpochCheckpoint([]byte(epochFile(t, dir)))
		if err != nil || !slices.Equal(again, entries) {
			t.Fatalf("rewritten %v (%v), want %v", again, err, entries)
		}
	})
}
