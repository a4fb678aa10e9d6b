package commitlog

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/twmb/franz-go/pkg/kgo"
)

// recoverTemplate is a small crashed log (three segments, the last one
// past the recovery point) that FuzzRecover copies for every input.
var recoverTemplate struct {
	once    sync.Once
	files   map[string][]byte
	batches [][]byte // as stored, in order
	rp      int64    // recovery point: the last segment's base
	last    int64    // base of the last segment
}

func loadRecoverTemplate(t testing.TB) {
	recoverTemplate.once.Do(func() {
		dir, err := os.MkdirTemp("", "commitlog-fuzz")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		cfg := smallConfig()
		cfg.SegmentBytes, cfg.IndexIntervalBytes = 600, 100
		l := openLog(t, dir, cfg, 0, 0)
		for i := 0; i < 24; i++ {
			b := makeBatch([][2][]byte{kv("k", "value"), kv("key2", string(bytes.Repeat([]byte{'v'}, i*3)))}, int64(100*i), allCodecs[i%5])
			appendOne(t, l, b)
			recoverTemplate.batches = append(recoverTemplate.batches, b)
		}
		l.Flush()
		recoverTemplate.last = l.active().base
		recoverTemplate.rp = recoverTemplate.last
		recoverTemplate.files = map[string][]byte{}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			recoverTemplate.files[e.Name()] = b
		}
		l.Close()
	})
}

// FuzzRecover overwrites bytes of the last segment at a chosen position
// (growing the file when past its end), as a torn or garbled write would,
// and checks that Open recovers: no panic, no error, only valid batches
// with increasing offsets, every batch before the damage kept, appends
// continuing at the end.
func FuzzRecover(f *testing.F) {
	f.Add(uint16(0), []byte{0xff})
	f.Add(uint16(30), []byte{0, 0, 0, 0})
	f.Add(uint16(17), []byte{1})                             // magic
	f.Add(uint16(8), []byte{0x7f, 0xff, 0xff, 0xff})         // length
	f.Add(uint16(0), []byte{0, 0, 0, 0, 0, 0, 0, 0})         // base offset
	f.Add(uint16(200), bytes.Repeat([]byte{0}, 100))         // zeroed middle
	f.Add(uint16(0xffff), makeBatch(nil, 0, 0)[:HeaderSize]) // torn header past the end
	f.Add(uint16(90), []byte("garbage"))
	f.Fuzz(func(t *testing.T, pos uint16, data []byte) {
		loadRecoverTemplate(t)
		tpl := &recoverTemplate
		dir := t.TempDir()
		lastName := filepath.Base(segPath(dir, tpl.last, ".log"))
		for name, b := range tpl.files {
			if name == lastName {
				b = bytes.Clone(b)
				at := min(int(pos), len(b))
				b = append(b[:at], append(data, b[min(at+len(data), len(b)):]...)...)
			}
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cfg := smallConfig()
		l, err := Open(dir, cfg, tpl.rp, 0, testLogger())
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer l.Close()
		// Batches that end before the damage must all be there.
		var intact int
		lastPos := int64(0)
		for _, b := range tpl.batches {
			h, _ := ParseHeader(b)
			if h.BaseOffset < tpl.last {
				intact++
				continue
			}
			if lastPos+h.Size() > int64(pos) {
				break
			}
			lastPos += h.Size()
			intact++
		}
		prev, n := int64(-1), 0
		err = l.ReadBatches(0, func(b []byte, h Header) bool {
			if _, err := Validate(b); err != nil {
				t.Fatalf("recovered an invalid batch at %d: %v", h.BaseOffset, err)
			}
			if h.BaseOffset <= prev {
				t.Fatalf("batch %d after %d", h.BaseOffset, prev)
			}
			if n < intact && !bytes.Equal(b, tpl.batches[n]) {
				t.Fatalf("intact batch %d changed", n)
			}
			prev, n = h.LastOffset(), n+1
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if n < intact {
			t.Fatalf("%d batches recovered, %d were intact", n, intact)
		}
		end := l.EndOffset()
		if end != max(prev+1, tpl.last) {
			t.Fatalf("end %d after last batch %d", end, prev)
		}
		if base := appendOne(t, l, makeBatch([][2][]byte{kv("a", "b")}, 1, 0)); base != end {
			t.Fatalf("appended at %d, end was %d", base, end)
		}
	})
}

// seedBatches are valid batches of every codec, plus snappy in the xerial
// framing the Java client writes.
func seedBatches() [][]byte {
	var out [][]byte
	for _, c := range allCodecs {
		out = append(out, makeBatch([][2][]byte{kv("k", "v"), {nil, []byte("keyless")}, {[]byte("tomb"), nil}}, 1000, c))
	}
	return append(out, xerialBatch())
}

func xerialBatch() []byte {
	b := makeBatch([][2][]byte{kv("x", "1"), kv("y", "2")}, 7, 0)
	raw := b[HeaderSize:]
	framed := append(append([]byte{}, xerialMagic...), 0, 0, 0, 1, 0, 0, 0, 1)
	for i := 0; i < len(raw); i += 10 { // several chunks
		chunk := s2.EncodeSnappy(nil, raw[i:min(i+10, len(raw))])
		framed = binary.BigEndian.AppendUint32(framed, uint32(len(chunk)))
		framed = append(framed, chunk...)
	}
	out := append(bytes.Clone(b[:HeaderSize]), framed...)
	binary.BigEndian.PutUint16(out[offAttributes:], uint16(kgo.CodecSnappy))
	binary.BigEndian.PutUint32(out[offLength:], uint32(len(out)-logOverhead))
	binary.BigEndian.PutUint32(out[offCRC:], crc32.Checksum(out[offAttributes:], castagnoli))
	return out
}

// FuzzSplitBatches feeds arbitrary bytes as a produce request's records:
// no panic, and every batch it accepts validates on its own.
func FuzzSplitBatches(f *testing.F) {
	seeds := seedBatches()
	for _, b := range seeds {
		f.Add(b)
		f.Add(b[:len(b)-1])
	}
	f.Add(append(bytes.Clone(seeds[0]), seeds[3]...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		total := 0
		err := SplitBatches(data, func(b []byte, h Header) error {
			v, err := Validate(b)
			if err != nil || v != h {
				t.Fatalf("accepted batch does not validate: %v", err)
			}
			total += len(b)
			DecodeRecords(b) // must not panic
			return nil
		})
		if err == nil && total != len(data) {
			t.Fatalf("accepted %d of %d bytes", total, len(data))
		}
	})
}

// FuzzDecodeRecords decodes arbitrary batches: no panic, and a batch that
// decodes survives compaction's re-encoding with the same records.
func FuzzDecodeRecords(f *testing.F) {
	for _, b := range seedBatches() {
		f.Add(b)
	}
	f.Add(makeBatch(nil, 0, kgo.CodecZstd))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, raws, err := decodeRecords(data)
		if err != nil {
			return
		}
		h, err := ParseHeader(data)
		if err != nil || h.Compression() > 4 || len(recs) == 0 {
			return
		}
		out, err := rebuildBatch(data, &h, raws, h.MaxTimestamp)
		if err != nil {
			t.Fatalf("rebuild: %v", err)
		}
		if _, err := Validate(out); err != nil {
			t.Fatalf("rebuilt batch invalid: %v", err)
		}
		again, err := DecodeRecords(out)
		if err != nil || len(again) != len(recs) {
			t.Fatalf("rebuilt batch decodes to %d records, %v", len(again), err)
		}
		for i := range recs {
			if !bytes.Equal(recs[i].Key, again[i].Key) || !bytes.Equal(recs[i].Value, again[i].Value) || recs[i].OffsetDelta != again[i].OffsetDelta {
				t.Fatalf("record %d changed", i)
			}
		}
	})
}
