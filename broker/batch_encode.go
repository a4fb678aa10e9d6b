package broker

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Batches the broker writes itself: coordinator records, transactional
// offset commits and transaction markers.

// kvRecord is one record of a batch the broker encodes.
type kvRecord struct {
	key, value []byte
}

// Record batch attribute bits.
const (
	attrTransactional = 1 << 4
	attrControl       = 1 << 5
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeBatch encodes records as one uncompressed record batch v2 of the
// producer (pid -1: none), CreateTime, with the given attribute bits.
// Sequences are not used (-1): the broker's own writes are not retried.
func encodeBatch(recs []kvRecord, now, pid int64, epoch int16, attrs int16) []byte {
	var raw []byte
	for i, r := range recs {
		kr := kmsg.Record{OffsetDelta: int32(i), Key: r.key, Value: r.value}
		kr.Length = int32(len(kr.AppendTo(nil)) - 1) // the length itself encodes in one byte as zero
		raw = kr.AppendTo(raw)
	}
	rb := kmsg.RecordBatch{
		Length:               int32(49 + len(raw)),
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           attrs,
		LastOffsetDelta:      int32(len(recs) - 1),
		FirstTimestamp:       now,
		MaxTimestamp:         now,
		ProducerID:           pid,
		ProducerEpoch:        epoch,
		FirstSequence:        -1,
		NumRecords:           int32(len(recs)),
		Records:              raw,
	}
	out := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], castagnoli))
	return out
}

// markerBatch is a transaction marker: a control batch of the producer
// holding one record whose key says commit or abort (ControlRecordKey)
// and whose value is the EndTxnMarker with the coordinator's epoch.
func markerBatch(pid int64, epoch int16, commit bool, coordinatorEpoch int32, now int64) []byte {
	k := kmsg.NewControlRecordKey()
	if commit {
		k.Type = kmsg.ControlRecordKeyTypeCommit
	}
	v := kmsg.NewEndTxnMarker()
	v.CoordinatorEpoch = coordinatorEpoch
	return encodeBatch([]kvRecord{{k.AppendTo(nil), v.AppendTo(nil)}}, now, pid, epoch, attrTransactional|attrControl)
}

// markerCommits reads a control record's key: whether the marker commits
// (or aborts); ok is false for other control records.
func markerCommits(key []byte) (commit, ok bool) {
	var k kmsg.ControlRecordKey
	if err := k.ReadFrom(key); err != nil {
		return false, false
	}
	switch k.Type {
	case kmsg.ControlRecordKeyTypeCommit:
		return true, true
	case kmsg.ControlRecordKeyTypeAbort:
		return false, true
	}
	return false, false
}
