package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker/commitlog"
)

// TestGroupPartition checks the group → __consumer_offsets partition map
// against Java's String.hashCode values (Kafka's Utils.abs(hashCode) % n).
func TestGroupPartition(t *testing.T) {
	for _, c := range []struct {
		group string
		hash  int64 // Java's "...".hashCode()
	}{
		{"", 0},
		{"a", 97},
		{"hello", 99162322},
		{"polygenelubricants", -2147483648},
		{"\U0001F600", 0xD83D*31 + 0xDE00}, // one code point, two UTF-16 units
	} {
		abs := c.hash
		if abs == -2147483648 {
			abs = 0
		} else if abs < 0 {
			abs = -abs
		}
		for _, n := range []int{1, 7, 50} {
			if got := groupPartition(c.group, n); int64(got) != abs%int64(n) {
				t.Errorf("groupPartition(%q, %d) = %d, want %d", c.group, n, got, abs%int64(n))
			}
		}
	}
}

// TestEncodedBatches checks the batches the broker writes itself pass its
// own validation (CRC-32C, lengths) and decode back: coordinator records
// and transaction markers.
func TestEncodedBatches(t *testing.T) {
	b := encodeBatch([]kvRecord{{[]byte("k1"), []byte("v1")}, {[]byte("k2"), nil}}, 1_700_000_000_000, -1, -1, 0)
	h, err := commitlog.Validate(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.NumRecords != 2 || h.LastOffsetDelta != 1 || h.ProducerID != -1 || h.IsControl() {
		t.Errorf("header %+v", h)
	}
	got, err := commitlog.DecodeRecords(b)
	if err != nil || len(got) != 2 || string(got[0].Value) != "v1" || got[1].Value != nil || string(got[1].Key) != "k2" {
		t.Fatalf("decoded %+v %v", got, err)
	}
	m := markerBatch(42, 3, true, 7, 1_700_000_000_000)
	h, err = commitlog.Validate(m)
	if err != nil {
		t.Fatal(err)
	}
	if !h.IsControl() || h.ProducerID != 42 || h.ProducerEpoch != 3 || h.NumRecords != 1 {
		t.Errorf("marker header %+v", h)
	}
	recs, err := commitlog.DecodeRecords(m)
	if err != nil || len(recs) != 1 {
		t.Fatalf("marker records %+v %v", recs, err)
	}
	var k kmsg.ControlRecordKey
	var v kmsg.EndTxnMarker
	if err := k.ReadFrom(recs[0].Key); err != nil || k.Type != kmsg.ControlRecordKeyTypeCommit {
		t.Errorf("marker key %+v %v", k, err)
	}
	if err := v.ReadFrom(recs[0].Value); err != nil || v.CoordinatorEpoch != 7 {
		t.Errorf("marker value %+v %v", v, err)
	}
}
