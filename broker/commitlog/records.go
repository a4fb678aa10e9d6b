package commitlog

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// minRecordSize is the smallest encoded record: length, attributes,
// timestamp delta, offset delta, key and value lengths, header count.
const minRecordSize = 7

// DecodeRecords decompresses a batch where needed and returns its records.
// The broker looks inside batches only where it must (timestamp lookups,
// compaction); produce and fetch keep them opaque.
func DecodeRecords(b []byte) ([]kmsg.Record, error) {
	recs, _, err := decodeRecords(b)
	return recs, err
}

// decodeRecords is DecodeRecords that also returns each record's encoded
// bytes (within the decompressed records section), so compaction can copy
// retained records without re-encoding them.
func decodeRecords(b []byte) ([]kmsg.Record, [][]byte, error) {
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if rb.NumRecords < 0 {
		return nil, nil, fmt.Errorf("%w: negative record count", ErrCorrupt)
	}
	raw := rb.Records
	if codec := rb.Attributes & AttrCompressionMask; codec != 0 {
		out, err := decompress(raw, codec)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: decompress: %v", ErrCorrupt, err)
		}
		raw = out
	}
	// The count comes from the batch: trust it only as far as the bytes
	// could hold that many records.
	n := int(min(int64(rb.NumRecords), int64(len(raw)/minRecordSize)))
	recs := make([]kmsg.Record, 0, n)
	raws := make([][]byte, 0, n)
	for i := int32(0); i < rb.NumRecords; i++ {
		var r kmsg.Record
		size, err := readRecord(raw, &r)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: record %d: %v", ErrCorrupt, i, err)
		}
		recs = append(recs, r)
		raws = append(raws, raw[:size:size])
		raw = raw[size:]
	}
	return recs, raws, nil
}

// readRecord decodes the length-prefixed record at the start of raw and
// returns how many bytes it took.
func readRecord(raw []byte, r *kmsg.Record) (int, error) {
	length, n := binary.Varint(raw)
	if n <= 0 || length < 0 || length > int64(len(raw)-n) {
		return 0, fmt.Errorf("bad record length")
	}
	total := n + int(length)
	if err := r.ReadFrom(raw[:total]); err != nil {
		return 0, err
	}
	return total, nil
}
