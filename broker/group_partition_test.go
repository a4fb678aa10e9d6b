package broker

import (
	"testing"

	"github.com/sluice-io/sluice/broker/commitlog"
	"github.com/sluice-io/sluice/broker/group"
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

// TestCoordinatorBatch checks the coordinator's record batches pass the
// broker's own validation (CRC-32C, lengths) and decode back.
func TestCoordinatorBatch(t *testing.T) {
	recs := []group.Record{{Key: []byte("k1"), Value: []byte("v1")}, {Key: []byte("k2")}}
	b := coordinatorBatch(recs, 1_700_000_000_000)
	h, err := commitlog.Validate(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.NumRecords != 2 || h.LastOffsetDelta != 1 || h.ProducerID != -1 {
		t.Errorf("header %+v", h)
	}
	got, err := commitlog.DecodeRecords(b)
	if err != nil || len(got) != 2 || string(got[0].Value) != "v1" || got[1].Value != nil || string(got[1].Key) != "k2" {
		t.Fatalf("decoded %+v %v", got, err)
	}
}
