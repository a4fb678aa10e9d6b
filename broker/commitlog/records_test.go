package commitlog

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestDecodeRecordsCodecs(t *testing.T) {
	for _, b := range seedBatches() {
		recs, err := DecodeRecords(b)
		if err != nil || len(recs) < 2 {
			t.Fatalf("codec %d: %d records, %v", b[offAttributes+1]&7, len(recs), err)
		}
	}
	recs, _ := DecodeRecords(xerialBatch())
	if len(recs) != 2 || string(recs[1].Value) != "2" {
		t.Fatalf("xerial: %+v", recs)
	}
}

// A batch may claim any record count; decoding must not trust it for
// allocation (it used to preallocate the claimed count: 2^31 records are
// hundreds of GiB).
func TestDecodeRecordsHugeCount(t *testing.T) {
	b := makeBatch([][2][]byte{kv("a", "b")}, 1, 0)
	binary.BigEndian.PutUint32(b[offRecordCount:], math.MaxInt32)
	if _, err := DecodeRecords(b); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v", err)
	}
}

// A record length varint near MaxInt64 used to overflow the bounds check
// and panic on slicing.
func TestDecodeRecordsLengthOverflow(t *testing.T) {
	b := makeBatch([][2][]byte{kv("a", "b")}, 1, 0)
	rec := binary.AppendVarint(nil, math.MaxInt64-1)
	b = append(b[:HeaderSize], rec...)
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-logOverhead))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	if _, err := DecodeRecords(b); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v", err)
	}
}

// A snappy block claiming a decoded size it cannot have is refused before
// anything is allocated for it.
func TestDecompressBounds(t *testing.T) {
	claim := binary.AppendUvarint(nil, 1<<30)
	if _, err := decompress(append(claim, 0, 0, 0), int16(kgo.CodecSnappy)); err == nil {
		t.Fatal("accepted a 1 GiB claim from 6 bytes")
	}
	old := maxDecompressedBatch
	maxDecompressedBatch = 1000
	defer func() { maxDecompressedBatch = old }()
	big := make([]byte, 5000)
	for _, c := range []kgo.CompressionCodecType{kgo.CodecGzip, kgo.CodecLz4, kgo.CodecSnappy} {
		if _, err := decompress(compressForTest(big, c), int16(c)); !errors.Is(err, errTooLarge) {
			t.Fatalf("codec %d: %v", c, err)
		}
	}
}
