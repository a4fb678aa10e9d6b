package broker

import (
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzDecodeRequest feeds arbitrary request bodies (after the size prefix)
// to the decoder: it must return a request or an error, never panic, and a
// request it accepts must re-encode.
func FuzzDecodeRequest(f *testing.F) {
	for _, req := range []kmsg.Request{
		kmsg.NewPtrApiVersionsRequest(), kmsg.NewPtrMetadataRequest(), kmsg.NewPtrProduceRequest(),
		kmsg.NewPtrFetchRequest(), kmsg.NewPtrListOffsetsRequest(), kmsg.NewPtrCreateTopicsRequest(),
	} {
		for v := int16(0); v <= req.MaxVersion(); v += 3 {
			req.SetVersion(v)
			b := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
			b = binary.BigEndian.AppendUint16(b, uint16(v))
			b = binary.BigEndian.AppendUint32(b, 7)
			b = append(b, 0, 3, 'c', 'l', 'i')
			if req.IsFlexible() {
				b = append(b, 0)
			}
			f.Add(req.AppendTo(b))
		}
	}
	f.Add([]byte{0, 18, 0, 99, 0, 0, 0, 1, 0xff, 0xff})
	cc := &conn{}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := cc.decode(body)
		if err != nil {
			return
		}
		if req.kreq == nil {
			t.Fatal("decoded request without a body")
		}
		_ = req.kreq.AppendTo(nil)
	})
}
