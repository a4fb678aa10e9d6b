package commitlog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// compressors holds one franz-go compressor per codec (1 gzip, 2 snappy,
// 3 lz4, 4 zstd); they pool their encoders and are safe for concurrent use.
var compressors struct {
	once sync.Once
	c    [5]kgo.Compressor
	err  error
}

func compressorFor(codec int16) (kgo.Compressor, error) {
	compressors.once.Do(func() {
		for i, cc := range []kgo.CompressionCodec{kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
			c, err := kgo.DefaultCompressor(cc)
			if err != nil {
				compressors.err = err
				return
			}
			compressors.c[i+1] = c
		}
	})
	if compressors.err != nil {
		return nil, compressors.err
	}
	if codec < 1 || codec > 4 {
		return nil, fmt.Errorf("unknown compression codec %d", codec)
	}
	return compressors.c[codec], nil
}

// rebuildBatch makes a batch that keeps everything of the original header
// (base offset, leader epoch, attributes with the codec, last offset delta,
// base timestamp, producer id, epoch and base sequence) but holds only the
// given records, each still encoded with its original offset and timestamp
// deltas. The records are recompressed with the original codec, the max
// timestamp is recomputed (unless the batch uses LogAppendTime) and the CRC
// is computed afresh.
func rebuildBatch(orig []byte, h *Header, raws [][]byte, maxTs int64) ([]byte, error) {
	var records []byte
	for _, r := range raws {
		records = append(records, r...)
	}
	if codec := h.Compression(); codec != 0 && len(raws) > 0 {
		c, err := compressorFor(int16(codec))
		if err != nil {
			return nil, err
		}
		out, used := c.Compress(new(bytes.Buffer), records)
		if used != kgo.CompressionCodecType(codec) {
			return nil, fmt.Errorf("recompress with codec %d failed", codec)
		}
		records = out
	}
	b := make([]byte, HeaderSize, HeaderSize+len(records))
	copy(b, orig[:HeaderSize])
	b = append(b, records...)
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-logOverhead))
	binary.BigEndian.PutUint32(b[offRecordCount:], uint32(len(raws)))
	if len(raws) == 0 {
		// An empty batch (a producer's last, kept by compaction) is
		// stored uncompressed.
		attrs := binary.BigEndian.Uint16(b[offAttributes:]) &^ AttrCompressionMask
		binary.BigEndian.PutUint16(b[offAttributes:], attrs)
	}
	if h.Attributes&AttrLogAppendTime == 0 {
		binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(maxTs))
	}
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b, nil
}
