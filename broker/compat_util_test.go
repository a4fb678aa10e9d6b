package broker_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Helpers shared by the compat_*_test.go acceptance tests, which drive the
// broker with clients other than franz-go's producer (sarama, kafka-go,
// kcat), with kadm, and with hand-made bytes.

// compatCodecs are the five codecs of a record batch, with the compression
// bits (attributes 0-2) a stored batch must carry for each.
var compatCodecs = []struct {
	name string
	attr uint8
}{{"none", 0}, {"gzip", 1}, {"snappy", 2}, {"lz4", 3}, {"zstd", 4}}

// compatCount is the number of records each codec round-trips: 100k, the
// acceptance figure (also under -race: the suite has the time), or 10k with
// -short.
func compatCount() int {
	if testing.Short() {
		return 10_000
	}
	return 100_000
}

func compatCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// compatAdmin is a kadm client on the broker, closed with the test.
func compatAdmin(t *testing.T, addr string, opts ...kgo.Opt) (*kadm.Client, *kgo.Client) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl), cl
}

// compatCreateTopic creates a topic with kadm and fails the test otherwise.
func compatCreateTopic(t *testing.T, adm *kadm.Client, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	resp, err := adm.CreateTopic(compatCtx(t, 30*time.Second), partitions, 1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v (%s)", topic, err, resp.ErrMessage)
	}
}

// compatEndOffset lists the high watermark of topic/partition.
func compatEndOffset(t *testing.T, adm *kadm.Client, topic string, partition int32) int64 {
	t.Helper()
	lo, err := adm.ListEndOffsets(compatCtx(t, 30*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := lo.Lookup(topic, partition)
	if !ok || o.Err != nil {
		t.Fatalf("end offset of %s/%d: %v (found %v)", topic, partition, o.Err, ok)
	}
	return o.Offset
}

// compatCheckCodec reads the first fetch of topic/0 with franz-go and checks
// its records carry the codec bits: the client really compressed, and the
// broker kept the batches as produced.
func compatCheckCodec(t *testing.T, addr, topic string, attr uint8) {
	t.Helper()
	if got := compatStoredCodec(t, addr, topic); got != attr {
		t.Errorf("%s: records stored with codec %d, want %d", topic, got, attr)
	}
}

// compatStoredCodec returns the compression codec of the first batch of topic/0.
func compatStoredCodec(t *testing.T, addr, topic string) uint8 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	fs := cl.PollFetches(compatCtx(t, 30*time.Second))
	if err := fs.Err0(); err != nil {
		t.Fatalf("fetch %s: %v", topic, err)
	}
	rs := fs.Records()
	if len(rs) == 0 {
		t.Fatalf("%s: first fetch returned no records", topic)
	}
	return rs[0].Attrs.CompressionType()
}

// compatConn dials the broker for hand-made frames.
func compatConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// compatFrame prefixes body with its big-endian int32 size.
func compatFrame(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// compatHeader is a v1 request header: api key, version, correlation id,
// client id.
func compatHeader(key, version int16, corr int32, clientID string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
	return append(b, clientID...)
}

// compatReadFrame reads one response frame and returns its correlation id and
// body (after a v0 response header).
func compatReadFrame(t *testing.T, c net.Conn) (int32, []byte) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		t.Fatalf("read response size: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatalf("read response body: %v", err)
	}
	if len(body) < 4 {
		t.Fatalf("response of %d bytes", len(body))
	}
	return int32(binary.BigEndian.Uint32(body)), body[4:]
}

// compatExpectClosed reads from c until the broker closes it: a read must
// end in EOF (a FIN, as Kafka closes), not data, a reset or a timeout. Each
// bad frame is sent in one write, so the broker has read every byte of it
// before closing and the kernel has no reason to send a reset.
func compatExpectClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	switch {
	case err == nil:
		t.Fatalf("%s: broker answered %d bytes (%x) instead of closing the connection", what, n, buf[:min(n, 32)])
	case !errors.Is(err, io.EOF):
		t.Fatalf("%s: want the connection closed (EOF), got %v", what, err)
	}
}

// compatApiVersions sends an ApiVersions request of the given version on c and
// decodes the answer as a v0 response (the header of ApiVersions responses
// is always v0).
func compatApiVersions(t *testing.T, c net.Conn, version int16, corr int32) *kmsg.ApiVersionsResponse {
	t.Helper()
	req := compatHeader(18, version, corr, "sluice-compat")
	if version >= 3 {
		req = append(req, 0) // header tags
	}
	kreq := kmsg.ApiVersionsRequest{Version: version, ClientSoftwareName: "sluice-compat", ClientSoftwareVersion: "1.0"}
	req = kreq.AppendTo(req)
	if _, err := c.Write(compatFrame(req)); err != nil {
		t.Fatal(err)
	}
	gotCorr, body := compatReadFrame(t, c)
	if gotCorr != corr {
		t.Fatalf("ApiVersions v%d: correlation id %d, want %d", version, gotCorr, corr)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if version <= 4 {
		resp.Version = version
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decode ApiVersions v%d response as v%d: %v", version, resp.Version, err)
	}
	return resp
}

// compatTopicID asks the broker (not a client's cache) for a topic's id.
func compatTopicID(t *testing.T, cl *kgo.Client, topic string) [16]byte {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(compatCtx(t, 10*time.Second), cl)
	if err != nil || len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("metadata for %s: %+v %v", topic, resp, err)
	}
	return resp.Topics[0].TopicID
}
