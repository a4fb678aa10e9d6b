// Package commitlog stores a partition as Kafka does on disk: a directory of
// segments (<base offset>.log with sparse .index and .timeindex files) holding
// record batches v2 exactly as produced. Only the base offset and the
// partition leader epoch, which sit outside the CRC, are stamped on append.
package commitlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Layout of a record batch v2 header (KAFKA-NOTES.md, "Record batches").
const (
	offBaseOffset      = 0
	offLength          = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordCount     = 57
	HeaderSize         = 61 // bytes before the first record

	// logOverhead is what precedes batchLength's count: base offset + length.
	logOverhead = 12
)

// Attribute bits.
const (
	AttrCompressionMask = 0x07
	AttrLogAppendTime   = 0x08
	AttrTransactional   = 0x10
	AttrControl         = 0x20
	AttrDeleteHorizon   = 0x40
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors a batch can fail validation with. The broker maps them to Kafka
// error codes (CORRUPT_MESSAGE, UNSUPPORTED_FOR_MESSAGE_FORMAT, ...).
var (
	ErrCorrupt        = errors.New("corrupt record batch")
	ErrUnsupportedMag = errors.New("unsupported record batch magic")
)

// Header is the decoded fixed part of a record batch.
type Header struct {
	BaseOffset      int64
	Length          int32 // bytes after the length field
	LeaderEpoch     int32
	Magic           int8
	CRC             uint32
	Attributes      int16
	LastOffsetDelta int32
	BaseTimestamp   int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	NumRecords      int32
}

// Size is the batch's whole size on disk.
func (h *Header) Size() int64 { return int64(h.Length) + logOverhead }

// LastOffset is the offset of the batch's last record.
func (h *Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Compression is the codec number (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
func (h *Header) Compression() int8 { return int8(h.Attributes & AttrCompressionMask) }

// IsControl reports whether the batch holds transaction markers.
func (h *Header) IsControl() bool { return h.Attributes&AttrControl != 0 }

// IsTransactional reports whether the batch belongs to a transaction.
func (h *Header) IsTransactional() bool { return h.Attributes&AttrTransactional != 0 }

// ParseHeader decodes the first HeaderSize bytes of b.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: %d header bytes, need %d", ErrCorrupt, len(b), HeaderSize)
	}
	h := Header{
		BaseOffset:      int64(binary.BigEndian.Uint64(b[offBaseOffset:])),
		Length:          int32(binary.BigEndian.Uint32(b[offLength:])),
		LeaderEpoch:     int32(binary.BigEndian.Uint32(b[offLeaderEpoch:])),
		Magic:           int8(b[offMagic]),
		CRC:             binary.BigEndian.Uint32(b[offCRC:]),
		Attributes:      int16(binary.BigEndian.Uint16(b[offAttributes:])),
		LastOffsetDelta: int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:   int64(binary.BigEndian.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:    int64(binary.BigEndian.Uint64(b[offMaxTimestamp:])),
		ProducerID:      int64(binary.BigEndian.Uint64(b[offProducerID:])),
		ProducerEpoch:   int16(binary.BigEndian.Uint16(b[offProducerEpoch:])),
		BaseSequence:    int32(binary.BigEndian.Uint32(b[offBaseSequence:])),
		NumRecords:      int32(binary.BigEndian.Uint32(b[offRecordCount:])),
	}
	if h.Magic != 2 {
		return h, fmt.Errorf("%w %d", ErrUnsupportedMag, h.Magic)
	}
	if h.Length < HeaderSize-logOverhead {
		return h, fmt.Errorf("%w: batch length %d below header size", ErrCorrupt, h.Length)
	}
	if h.LastOffsetDelta < 0 || h.NumRecords < 0 {
		return h, fmt.Errorf("%w: negative record count or offset delta", ErrCorrupt)
	}
	return h, nil
}

// Validate checks one whole batch in b (exactly one batch): lengths, magic and
// CRC-32C. It returns the parsed header.
func Validate(b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if h.Size() != int64(len(b)) {
		return h, fmt.Errorf("%w: batch length %d but %d bytes", ErrCorrupt, h.Size(), len(b))
	}
	if crc32.Checksum(b[offAttributes:], castagnoli) != h.CRC {
		return h, fmt.Errorf("%w: CRC mismatch", ErrCorrupt)
	}
	return h, nil
}

// SplitBatches walks a produce request's records field and returns each
// validated batch. A record set holding anything but whole v2 batches is
// rejected.
func SplitBatches(records []byte, fn func(b []byte, h Header) error) error {
	for len(records) > 0 {
		if len(records) < HeaderSize {
			return fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(records))
		}
		size := int64(int32(binary.BigEndian.Uint32(records[offLength:]))) + logOverhead
		if size < HeaderSize || size > int64(len(records)) {
			if len(records) > offMagic && records[offMagic] != 2 {
				return fmt.Errorf("%w %d", ErrUnsupportedMag, records[offMagic])
			}
			return fmt.Errorf("%w: batch length %d exceeds %d available", ErrCorrupt, size, len(records))
		}
		h, err := Validate(records[:size])
		if err != nil {
			return err
		}
		if err := fn(records[:size], h); err != nil {
			return err
		}
		records = records[size:]
	}
	return nil
}

// stamp writes the broker-assigned base offset and leader epoch, both outside
// the CRC, into a batch in place.
func stamp(b []byte, base int64, epoch int32) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(base))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
}

// SetLogAppendTime rewrites the batch's max timestamp and timestamp-type bit
// for topics with message.timestamp.type=LogAppendTime; both are inside the
// CRC, which is recomputed.
func SetLogAppendTime(b []byte, now int64) {
	attrs := binary.BigEndian.Uint16(b[offAttributes:]) | AttrLogAppendTime
	binary.BigEndian.PutUint16(b[offAttributes:], attrs)
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(now))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
}
