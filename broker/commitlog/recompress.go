package commitlog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Recompress returns the batch with its records compressed by codec (0 for
// none) instead of the codec they came with: what a topic whose
// compression.type names a codec asks of the broker. Every other header
// field and every record byte stay as they were; the length and CRC are
// recomputed. A batch already in codec is returned as is.
func Recompress(batch []byte, codec int8) ([]byte, error) {
	h, err := Validate(batch)
	if err != nil {
		return nil, err
	}
	if h.Compression() == codec {
		return batch, nil
	}
	raw := batch[HeaderSize:]
	if from := h.Compression(); from != 0 {
		if raw, err = decompress(raw, int16(from)); err != nil {
			return nil, fmt.Errorf("%w: decompress: %v", ErrCorrupt, err)
		}
	}
	if codec != 0 {
		c, err := compressorFor(int16(codec))
		if err != nil {
			return nil, err
		}
		out, used := c.Compress(new(bytes.Buffer), raw)
		if used != kgo.CompressionCodecType(codec) {
			return nil, fmt.Errorf("compress with codec %d failed", codec)
		}
		raw = append([]byte(nil), out...)
	}
	b := make([]byte, HeaderSize, HeaderSize+len(raw))
	copy(b, batch[:HeaderSize])
	b = append(b, raw...)
	attrs := uint16(h.Attributes)&^AttrCompressionMask | uint16(codec)
	binary.BigEndian.PutUint16(b[offAttributes:], attrs)
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-logOverhead))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b, nil
}
