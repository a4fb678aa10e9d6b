package broker_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testbroker"
)

// TestCompatBadInput sends malformed frames and invalid requests: a bad
// frame closes only its own connection, an invalid produce gets Kafka's
// error code and appends nothing, and the broker keeps serving everyone.
func TestCompatBadInput(t *testing.T) {
	b := testbroker.Start(t)
	adm, cl := compatAdmin(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	const topic, small = "bad-input", "bad-small"
	compatCreateTopic(t, adm, topic, 1, nil)
	compatCreateTopic(t, adm, small, 1, map[string]*string{"max.message.bytes": kadm.StringPtr("1024")})
	compatProduceRange(t, cl, topic, 0, 10)
	bystander := compatConn(t, b.Addr()) // open throughout, must stay served
	compatApiVersions(t, bystander, 3, 1)

	t.Run("frames", func(t *testing.T) {
		metadataHdr := compatHeader(3, 1, 7, "bad")
		for _, tc := range []struct {
			name      string
			send      []byte
			closeSend bool // half-close after sending, as a client dying mid-frame
		}{
			{"truncated-frame", append(binary.BigEndian.AppendUint32(nil, 100), metadataHdr...), true},
			{"truncated-body", compatFrame(append(metadataHdr, 0, 0, 0, 5)), false}, // 5 topics, none sent
			{"size-over-100MiB", binary.BigEndian.AppendUint32(nil, 100<<20+1), false},
			{"negative-size", []byte{0xff, 0xff, 0xff, 0xf0}, false},
			{"size-below-header", compatFrame([]byte{0, 3}), false},
			{"http-garbage", []byte("GET / HTTP/1.1\r\nHost: sluice\r\n\r\n"), false},
			{"framed-garbage", compatFrame(bytes.Repeat([]byte{0xfe}, 40)), false},
			{"unknown-api-key", compatFrame(compatHeader(9999, 0, 7, "bad")), false},
			{"fetch-v0-unsupported", compatFrame(append(compatHeader(1, 0, 7, "bad"), make([]byte, 12)...)), false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := compatConn(t, b.Addr())
				if _, err := c.Write(tc.send); err != nil {
					t.Fatal(err)
				}
				if tc.closeSend {
					c.(*net.TCPConn).CloseWrite()
				}
				compatExpectClosed(t, c, tc.name)
				fresh := compatConn(t, b.Addr())
				if resp := compatApiVersions(t, fresh, 3, 2); resp.ErrorCode != 0 {
					t.Fatalf("ApiVersions on a new connection: error %d", resp.ErrorCode)
				}
				r := testRecord(topic, 0)
				if err := cl.ProduceSync(compatCtx(t, 30*time.Second), r).FirstErr(); err != nil {
					t.Fatalf("franz-go produce after %s: %v", tc.name, err)
				}
			})
		}
		if resp := compatApiVersions(t, bystander, 3, 3); resp.ErrorCode != 0 {
			t.Fatalf("ApiVersions on the bystander connection: error %d", resp.ErrorCode)
		}
	})

	t.Run("produce", func(t *testing.T) {
		pc := &compatProducer{c: compatConn(t, b.Addr())}
		corrupt := compatBatch(3, 100)
		corrupt[len(corrupt)-5] ^= 0x01 // inside the last record's value
		for _, v := range []int16{3, 7, 9, 11} {
			end := compatEndOffset(t, adm, topic, 0)
			if p := pc.produce(t, v, -1, topic, 0, compatBatch(3, 100)); p.ErrorCode != 0 || p.BaseOffset != end {
				t.Fatalf("v%d valid batch: %s base offset %d, want no error and %d", v, compatErrName(p.ErrorCode), p.BaseOffset, end)
			}
			for _, tc := range []struct {
				name      string
				acks      int16
				tp        string
				partition int32
				batch     []byte
				want      *kerr.Error
			}{
				{"corrupt CRC", -1, topic, 0, corrupt, kerr.CorruptMessage},
				{"batch over max.message.bytes", -1, small, 0, compatBatch(2, 1000), kerr.MessageTooLarge},
				{"unknown partition", -1, topic, 7, compatBatch(1, 10), kerr.UnknownTopicOrPartition},
				{"unknown topic", -1, "bad-missing", 0, compatBatch(1, 10), kerr.UnknownTopicOrPartition},
				{"acks=5", 5, topic, 0, compatBatch(1, 10), kerr.InvalidRequiredAcks},
				{"timestamp 2h ahead", -1, topic, 0, compatBatchAt(time.Now().Add(2*time.Hour).UnixMilli(), 1, 10), kerr.InvalidTimestamp},
			} {
				if p := pc.produce(t, v, tc.acks, tc.tp, tc.partition, tc.batch); p.ErrorCode != tc.want.Code || p.BaseOffset != -1 {
					t.Errorf("v%d %s: %s base offset %d, want %s and -1", v, tc.name, compatErrName(p.ErrorCode), p.BaseOffset, tc.want.Message)
				}
			}
			if got := compatEndOffset(t, adm, topic, 0); got != end+3 {
				t.Fatalf("v%d: end offset %d after rejected produces, want %d", v, got, end+3)
			}
			if got := compatEndOffset(t, adm, small, 0); got != 0 {
				t.Fatalf("v%d: %s end offset %d after a rejected produce, want 0", v, small, got)
			}
		}
		// acks=0 gets no response: the next answer on the connection is
		// the next request's, and the records are appended.
		end := compatEndOffset(t, adm, topic, 0)
		req := compatProduceRequest(9, 0, topic, 0, compatBatch(2, 10))
		compatSend(t, pc.c, req, 999)
		if p := pc.produce(t, 9, -1, topic, 0, compatBatch(1, 10)); p.ErrorCode != 0 || p.BaseOffset != end+2 {
			t.Errorf("produce after an acks=0 produce: %s base offset %d, want %d", compatErrName(p.ErrorCode), p.BaseOffset, end+2)
		}
		if p := pc.produce(t, 9, -1, small, 0, compatBatch(1, 500)); p.ErrorCode != 0 {
			t.Errorf("batch under max.message.bytes: %s", compatErrName(p.ErrorCode))
		}
		if md, err := adm.Metadata(compatCtx(t, 10*time.Second), "bad-missing"); err != nil || md.Topics["bad-missing"].Err == nil {
			t.Errorf("produce to a missing topic created it: %+v %v", md.Topics, err)
		}
	})

	t.Run("produce-not-one-batch", func(t *testing.T) {
		// Kafka (ProduceRequest.validateRecords, v3+) refuses a records
		// field that is not exactly one whole batch with INVALID_RECORD.
		pc := &compatProducer{c: compatConn(t, b.Addr())}
		var diverge []string
		for _, tc := range []struct {
			name    string
			records []byte
		}{
			{"a truncated batch", compatBatch(3, 100)[:80]},
			{"two batches", append(compatBatch(1, 10), compatBatch(1, 10)...)},
		} {
			end := compatEndOffset(t, adm, topic, 0)
			p := pc.produce(t, 9, -1, topic, 0, tc.records)
			if p.ErrorCode != kerr.InvalidRecord.Code {
				diverge = append(diverge, fmt.Sprintf("%s got %s (base offset %d)", tc.name, compatErrName(p.ErrorCode), p.BaseOffset))
			}
			if p.ErrorCode != 0 && compatEndOffset(t, adm, topic, 0) != end {
				t.Errorf("%s: rejected with %s but appended", tc.name, compatErrName(p.ErrorCode))
			}
		}
		if len(diverge) > 0 {
			t.Error("produce v9 records field not exactly one batch: " + strings.Join(diverge, "; ") + "; Kafka answers INVALID_RECORD")
		}
	})

	t.Run("fetch-past-end", func(t *testing.T) {
		end := compatEndOffset(t, adm, topic, 0)
		if p := compatFetch(t, cl, topic, 0, end); p.ErrorCode != 0 || p.HighWatermark != end {
			t.Errorf("fetch at the end %d: error %d high watermark %d", end, p.ErrorCode, p.HighWatermark)
		}
		if p := compatFetch(t, cl, topic, 0, end+10); p.ErrorCode != kerr.OffsetOutOfRange.Code {
			t.Errorf("fetch at %d past the end %d: error %v, want OFFSET_OUT_OF_RANGE", end+10, end, kerr.ErrorForCode(p.ErrorCode))
		}
	})
}

// compatProducer sends Produce requests on its own connection, bypassing
// client-side checks (franz-go rewrites acks to its own setting).
type compatProducer struct {
	c    net.Conn
	corr int32
}

func (rp *compatProducer) produce(t *testing.T, version, acks int16, topic string, partition int32, records []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	rp.corr++
	req := compatProduceRequest(version, acks, topic, partition, records)
	resp := compatRequest(t, rp.c, req, rp.corr).(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce response %+v", resp)
	}
	return resp.Topics[0].Partitions[0]
}

// compatProduceRequest is a Produce request for one partition.
func compatProduceRequest(version, acks int16, topic string, partition int32, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = version, acks, 10_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	p := kmsg.NewProduceRequestTopicPartition()
	p.Partition, p.Records = partition, records
	rt.Partitions = append(rt.Partitions, p)
	req.Topics = append(req.Topics, rt)
	return req
}

// compatErrName is the Kafka name of an error code.
func compatErrName(code int16) string {
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return e.Message
	}
	return "NONE"
}

// compatBatch builds a valid uncompressed v2 batch of n records with values
// of size bytes, its length and CRC-32C filled in.
func compatBatch(n, size int) []byte { return compatBatchAt(time.Now().UnixMilli(), n, size) }

// compatBatchAt is compatBatch with the first record's timestamp ts.
func compatBatchAt(ts int64, n, size int) []byte {
	var recs []byte
	for i := 0; i < n; i++ {
		body := []byte{0} // attributes
		body = kbin.AppendVarlong(body, int64(i))
		body = kbin.AppendVarint(body, int32(i))
		body = kbin.AppendVarintBytes(body, []byte("k"))
		body = kbin.AppendVarintBytes(body, bytes.Repeat([]byte{'v'}, size))
		body = kbin.AppendVarint(body, 0) // no headers
		recs = append(kbin.AppendVarint(recs, int32(len(body))), body...)
	}
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(n - 1),
		FirstTimestamp: ts, MaxTimestamp: ts + int64(n-1),
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(n), Records: recs,
	}
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// compatRequest sends req on c with the right request header and decodes the
// answer.
func compatRequest(t *testing.T, c net.Conn, req kmsg.Request, corr int32) kmsg.Response {
	t.Helper()
	compatSend(t, c, req, corr)
	got, body := compatReadFrame(t, c)
	if got != corr {
		t.Fatalf("%s: correlation id %d, want %d", kmsg.NameForKey(req.Key()), got, corr)
	}
	resp := req.ResponseKind()
	if resp.IsFlexible() && req.Key() != 18 {
		body = body[1:] // empty header tags
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decode %s v%d response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp
}

// compatSend writes req on c with the request header of its version.
func compatSend(t *testing.T, c net.Conn, req kmsg.Request, corr int32) {
	t.Helper()
	msg := compatHeader(req.Key(), req.GetVersion(), corr, "sluice-compat")
	if req.IsFlexible() {
		msg = append(msg, 0) // no header tags
	}
	if _, err := c.Write(compatFrame(req.AppendTo(msg))); err != nil {
		t.Fatal(err)
	}
}
