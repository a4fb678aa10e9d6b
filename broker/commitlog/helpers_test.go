package commitlog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testLogger keeps warnings (recovery truncations) out of test output
// unless -v is given.
func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(discard{}, nil))
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// smallConfig rolls segments every few KiB and indexes densely so that tests
// cross many segment and index boundaries.
func smallConfig() Config {
	c := DefaultConfig()
	c.SegmentBytes = 4096
	c.IndexIntervalBytes = 256
	return c
}

// batchSpec describes a batch to build; zero values give a plain producer's
// batch (no producer id, CreateTime).
type batchSpec struct {
	records  [][2][]byte // key, value; a nil slice stays null on the wire
	ts       []int64     // per-record timestamps
	codec    kgo.CompressionCodecType
	pid      int64
	epoch    int16
	seq      int32
	txn      bool
	control  bool
	appendTs bool // LogAppendTime
}

// makeBatch builds a record batch v2 the way a client does, with kmsg:
// record i gets offset delta i and timestamp ts+i.
func makeBatch(records [][2][]byte, ts int64, codec kgo.CompressionCodecType) []byte {
	tss := make([]int64, len(records))
	for i := range tss {
		tss[i] = ts + int64(i)
	}
	return buildBatch(batchSpec{records: records, ts: tss, codec: codec, pid: -1, epoch: -1, seq: -1})
}

func buildBatch(s batchSpec) []byte {
	var raw []byte
	maxTs := int64(-1)
	for i, kv := range s.records {
		r := kmsg.Record{TimestampDelta64: s.ts[i] - s.ts[0], OffsetDelta: int32(i), Key: kv[0], Value: kv[1]}
		r.TimestampDelta = int32(r.TimestampDelta64)
		r.Length = int32(len(r.AppendTo(nil)) - 1) // encoded with a 1-byte zero length
		raw = r.AppendTo(raw)
		maxTs = max(maxTs, s.ts[i])
	}
	if s.codec != kgo.CodecNone {
		raw = compressForTest(raw, s.codec)
	}
	attrs := int16(s.codec)
	if s.txn {
		attrs |= AttrTransactional
	}
	if s.control {
		attrs |= AttrControl
	}
	if s.appendTs {
		attrs |= AttrLogAppendTime
	}
	first := int64(0)
	if len(s.ts) > 0 {
		first = s.ts[0]
	}
	rb := kmsg.RecordBatch{
		Length:               int32(49 + len(raw)),
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           attrs,
		LastOffsetDelta:      int32(len(s.records) - 1),
		FirstTimestamp:       first,
		MaxTimestamp:         maxTs,
		ProducerID:           s.pid,
		ProducerEpoch:        s.epoch,
		FirstSequence:        s.seq,
		NumRecords:           int32(len(s.records)),
		Records:              raw,
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

var testCompressors sync.Map // codec → kgo.Compressor

func compressForTest(raw []byte, codec kgo.CompressionCodecType) []byte {
	if c, ok := testCompressors.Load(codec); ok {
		out, _ := c.(kgo.Compressor).Compress(new(bytes.Buffer), raw)
		return bytes.Clone(out)
	}
	var cc kgo.CompressionCodec
	switch codec {
	case kgo.CodecGzip:
		cc = kgo.GzipCompression()
	case kgo.CodecSnappy:
		cc = kgo.SnappyCompression()
	case kgo.CodecLz4:
		cc = kgo.Lz4Compression()
	case kgo.CodecZstd:
		cc = kgo.ZstdCompression()
	}
	c, err := kgo.DefaultCompressor(cc)
	if err != nil {
		panic(err)
	}
	testCompressors.Store(codec, c)
	out, got := c.Compress(new(bytes.Buffer), raw)
	if got != codec {
		panic(fmt.Sprintf("compressed with %d, want %d", got, codec))
	}
	return bytes.Clone(out)
}

// controlBatch is a transaction marker (commit when commit, else abort).
func controlBatch(pid int64, epoch int16, commit bool, ts int64) []byte {
	key := []byte{0, 0, 0, 0}
	if commit {
		key[3] = 1
	}
	return buildBatch(batchSpec{records: [][2][]byte{{key, {0, 0, 0, 0, 0, 0}}}, ts: []int64{ts},
		pid: pid, epoch: epoch, seq: -1, txn: true, control: true})
}

// kv is a shorthand for one record.
func kv(k, v string) [2][]byte { return [2][]byte{[]byte(k), []byte(v)} }

func toBatch(t testing.TB, b []byte) Batch {
	t.Helper()
	h, err := Validate(b)
	if err != nil {
		t.Fatalf("invalid test batch: %v", err)
	}
	return Batch{Data: b, Header: h}
}

// appendOne appends a batch and returns its base offset.
func appendOne(t testing.TB, l *Log, b []byte) int64 {
	t.Helper()
	base, err := l.Append([]Batch{toBatch(t, b)}, 3)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return base
}

func openLog(t testing.TB, dir string, cfg Config, recoveryPoint, start int64) *Log {
	t.Helper()
	l, err := Open(dir, cfg, recoveryPoint, start, testLogger())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return l
}

// rec is one record as read back.
type rec struct {
	off, ts    int64
	key, value string
	nilKey     bool
	nilValue   bool
}

// readRecords decodes every record from offset from on, via ReadBatches.
func readRecords(t testing.TB, l *Log, from int64) []rec {
	t.Helper()
	var out []rec
	err := l.ReadBatches(from, func(b []byte, h Header) bool {
		if _, err := Validate(b); err != nil {
			t.Fatalf("ReadBatches gave an invalid batch at %d: %v", h.BaseOffset, err)
		}
		recs, err := DecodeRecords(b)
		if err != nil {
			t.Fatalf("decode batch at %d: %v", h.BaseOffset, err)
		}
		for _, r := range recs {
			ts := h.BaseTimestamp + r.TimestampDelta64
			if h.Attributes&AttrLogAppendTime != 0 {
				ts = h.MaxTimestamp
			}
			out = append(out, rec{off: h.BaseOffset + int64(r.OffsetDelta), ts: ts, key: string(r.Key), value: string(r.Value),
				nilKey: r.Key == nil, nilValue: r.Value == nil})
		}
		return true
	})
	if err != nil {
		t.Fatalf("ReadBatches: %v", err)
	}
	return out
}

// fetchAll consumes the log as a consumer does, through Read, from offset
// from up to maxOffset, maxBytes at a time; it returns the whole batches seen.
func fetchAll(t testing.TB, l *Log, from, maxOffset, maxBytes int64) [][]byte {
	t.Helper()
	var out [][]byte
	for off := from; off < maxOffset; {
		s, err := l.Read(off, maxOffset, maxBytes, true)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if s.Size == 0 {
			t.Fatalf("Read(%d) below %d returned nothing", off, maxOffset)
		}
		buf := make([]byte, s.Size)
		if _, err := s.File.ReadAt(buf, s.Pos); err != nil {
			t.Fatalf("read slice: %v", err)
		}
		progressed := false
		for len(buf) >= HeaderSize {
			h, err := ParseHeader(buf)
			if err != nil || h.Size() > int64(len(buf)) {
				break // a batch cut by maxBytes
			}
			b := buf[:h.Size()]
			if _, err := Validate(b); err != nil {
				t.Fatalf("fetched invalid batch at %d: %v", h.BaseOffset, err)
			}
			if h.BaseOffset >= maxOffset {
				t.Fatalf("fetched batch %d at or past maxOffset %d", h.BaseOffset, maxOffset)
			}
			out = append(out, b)
			off, progressed = h.LastOffset()+1, true
			buf = buf[h.Size():]
		}
		if !progressed {
			t.Fatalf("Read(%d) returned no whole batch", off)
		}
	}
	return out
}

// closeOrCrash closes l cleanly, or, with crash, as a killed process leaves
// it: what was flushed is on disk, nothing else is written (no indexes,
// snapshots or checkpoints).
func closeOrCrash(t testing.TB, l *Log, crash bool) {
	t.Helper()
	if !crash {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	l.closed = true
	l.closeFiles()
	l.mu.Unlock()
}
