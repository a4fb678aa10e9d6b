package commitlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// maxDecompressedBatch bounds what one batch may decompress to. The broker
// decompresses batches read from disk or taken from produce requests; a
// small crafted batch must not make it allocate gigabytes (franz-go's
// default decompressor allows 2 GiB). A batch over the bound is reported as
// corrupt; callers treat such a batch as opaque (compaction keeps it whole).
var maxDecompressedBatch = 256 << 20

var errTooLarge = errors.New("decompressed batch exceeds the size bound")

// zstdDecoder is shared: DecodeAll is safe for concurrent use, and the
// memory bound makes it refuse frames that claim or reach more.
var zstdDecoder, _ = zstd.NewReader(nil,
	zstd.WithDecoderConcurrency(0),
	zstd.WithDecoderLowmem(true),
	zstd.WithDecoderMaxMemory(uint64(maxDecompressedBatch)),
)

// xerialMagic opens snappy data framed the way the Java client's
// snappy-java stream writes it.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// decompress inflates a batch's records section compressed with codec
// (1 gzip, 2 snappy, 3 lz4, 4 zstd).
func decompress(src []byte, codec int16) ([]byte, error) {
	limit := maxDecompressedBatch
	switch codec {
	case 1:
		r, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, err
		}
		return readLimited(r, limit)
	case 2:
		if len(src) >= 16 && bytes.HasPrefix(src, xerialMagic) {
			return xerialDecode(src[16:], limit)
		}
		return snappyBlock(nil, src, limit)
	case 3:
		return readLimited(lz4.NewReader(bytes.NewReader(src)), limit)
	case 4:
		out, err := zstdDecoder.DecodeAll(src, nil)
		if err != nil {
			return nil, err
		}
		return out, nil
	default:
		return nil, fmt.Errorf("unknown compression codec %d", codec)
	}
}

func readLimited(r io.Reader, limit int) ([]byte, error) {
	var out bytes.Buffer
	n, err := out.ReadFrom(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if n > int64(limit) {
		return nil, errTooLarge
	}
	return out.Bytes(), nil
}

// snappyBlock decodes one raw snappy block, appending to dst. The decoded
// length the block claims is checked before the decoder allocates it:
// snappy cannot expand more than about 21 times (a 3-byte copy yields at
// most 64 bytes), so a larger claim is garbage.
func snappyBlock(dst, src []byte, limit int) ([]byte, error) {
	n, err := s2.DecodedLen(src)
	if err != nil {
		return nil, err
	}
	if n > 22*len(src)+64 || len(dst)+n > limit {
		return nil, errTooLarge
	}
	out, err := s2.Decode(nil, src)
	if err != nil {
		return nil, err
	}
	return append(dst, out...), nil
}

// xerialDecode decodes the chunks after the 16-byte xerial header: each is
// a 4-byte big-endian length and a raw snappy block.
func xerialDecode(src []byte, limit int) ([]byte, error) {
	var out []byte
	for len(src) > 0 {
		if len(src) < 4 {
			return nil, errors.New("truncated xerial chunk length")
		}
		n := binary.BigEndian.Uint32(src)
		src = src[4:]
		if uint64(n) > uint64(len(src)) {
			return nil, errors.New("truncated xerial chunk")
		}
		var err error
		if out, err = snappyBlock(out, src[:n], limit); err != nil {
			return nil, err
		}
		src = src[n:]
	}
	return out, nil
}
