package commitlog

import (
	"github.com/twmb/franz-go/pkg/kgo"
	"testing"
)

// TestRecompress converts a batch between every pair of codecs and checks
// the records and header fields survive and the result validates.
func TestRecompress(t *testing.T) {
	recs := [][2][]byte{{[]byte("k1"), []byte("v1")}, {nil, []byte("v2")}, {[]byte("k3"), nil}}
	for from := int8(0); from <= 4; from++ {
		orig := makeBatch(recs, 1_700_000_000_000, kgo.CompressionCodecType(from))
		for to := int8(0); to <= 4; to++ {
			out, err := Recompress(append([]byte(nil), orig...), to)
			if err != nil {
				t.Fatalf("%d -> %d: %v", from, to, err)
			}
			h, err := Validate(out)
			if err != nil {
				t.Fatalf("%d -> %d: result does not validate: %v", from, to, err)
			}
			oh, _ := ParseHeader(orig)
			if h.Compression() != to || h.NumRecords != oh.NumRecords || h.MaxTimestamp != oh.MaxTimestamp || h.LastOffsetDelta != oh.LastOffsetDelta {
				t.Fatalf("%d -> %d: header %+v from %+v", from, to, h, oh)
			}
			got, err := DecodeRecords(out)
			if err != nil || len(got) != len(recs) {
				t.Fatalf("%d -> %d: decode: %v (%d records)", from, to, err, len(got))
			}
			for i, r := range got {
				if string(r.Key) != string(recs[i][0]) || string(r.Value) != string(recs[i][1]) || (r.Key == nil) != (recs[i][0] == nil) {
					t.Fatalf("%d -> %d: record %d = %q/%q", from, to, i, r.Key, r.Value)
				}
			}
		}
	}
}
