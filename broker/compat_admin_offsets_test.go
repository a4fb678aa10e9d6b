package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// compatAdminOffsets lists offsets by position and time with kadm, then deletes
// records and checks where the log now starts, for clients and for kadm.
func compatAdminOffsets(t *testing.T, addr string, adm *kadm.Client, cl *kgo.Client) {
	const topic, n, base = "adm-offsets", 100, int64(1_700_000_000_000)
	ctx := compatCtx(t, time.Minute)
	compatCreateTopic(t, adm, topic, 1, nil)
	for batch := 0; batch < 4; batch++ {
		var rs []*kgo.Record
		for i := batch * n / 4; i < (batch+1)*n/4; i++ {
			r := testRecord(topic, i)
			r.Timestamp = time.UnixMilli(base + 10*int64(i))
			rs = append(rs, r)
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	list := func(what string, lo kadm.ListedOffsets, err error, want, wantTs int64) {
		t.Helper()
		o, ok := lo.Lookup(topic, 0)
		if err != nil || !ok || o.Err != nil || o.Offset != want || (wantTs != 0 && o.Timestamp != wantTs) {
			t.Errorf("%s: %+v (found %v, %v), want offset %d timestamp %d", what, o, ok, err, want, wantTs)
		}
	}
	lo, err := adm.ListStartOffsets(ctx, topic)
	list("start", lo, err, 0, 0)
	lo, err = adm.ListEndOffsets(ctx, topic)
	list("end", lo, err, n, 0)
	lo, err = adm.ListMaxTimestampOffsets(ctx, topic)
	list("max timestamp", lo, err, n-1, base+10*(n-1))
	for _, tc := range []struct{ ms, want int64 }{
		{base - 1, 0}, {base, 0}, {base + 10*42 - 5, 42}, {base + 10*42, 42}, {base + 10*25 - 1, 25},
		{base + 10*(n-1), n - 1},
	} {
		lo, err := adm.ListOffsetsAfterMilli(ctx, tc.ms, topic)
		list(fmt.Sprintf("after %d", tc.ms), lo, err, tc.want, base+10*tc.want)
	}
	lo, err = adm.ListOffsetsAfterMilli(ctx, base+10*n, topic) // after every record: kadm falls back to the end
	list("after the last record", lo, err, n, 0)

	del := func(at int64) kadm.DeleteRecordsResponse {
		t.Helper()
		rs, err := adm.DeleteRecords(ctx, kadm.Offsets{topic: {0: {Topic: topic, Partition: 0, At: at}}})
		if err != nil {
			t.Fatalf("delete records before %d: %v", at, err)
		}
		r, _ := rs.Lookup(topic, 0)
		return r
	}
	if r := del(30); r.Err != nil || r.LowWatermark != 30 {
		t.Fatalf("delete records before 30: low watermark %d, %v", r.LowWatermark, r.Err)
	}
	lo, err = adm.ListStartOffsets(ctx, topic)
	list("start after deleting records", lo, err, 30, 0)
	if r := del(10); r.Err != nil || r.LowWatermark != 30 {
		t.Errorf("delete records before 10, below the log start 30: low watermark %d, %v", r.LowWatermark, r.Err)
	}
	// A timestamp of a deleted record finds the first record kept.
	lo, err = adm.ListOffsetsAfterMilli(ctx, base+10*10, topic)
	list("after the timestamp of deleted record 10", lo, err, 30, base+10*30)

	cons, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for next := int64(30); next < n; {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume after deleting records: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next || string(r.Key) != fmt.Sprintf("key-%d", next) {
				t.Fatalf("consumed offset %d key %s, want %d", r.Offset, r.Key, next)
			}
			next++
		})
	}
	if p := compatFetch(t, cl, topic, 0, 10); p.ErrorCode != kerr.OffsetOutOfRange.Code || p.LogStartOffset != 30 {
		t.Errorf("fetch at 10, below the log start 30: error %d log start %d, want OFFSET_OUT_OF_RANGE", p.ErrorCode, p.LogStartOffset)
	}
	if r := del(n + 1); r.Err != kerr.OffsetOutOfRange {
		t.Errorf("delete records past the high watermark: %v, want OFFSET_OUT_OF_RANGE", r.Err)
	}
	if r := del(-1); r.Err != nil || r.LowWatermark != n {
		t.Errorf("delete records up to the high watermark (-1): low watermark %d, %v", r.LowWatermark, r.Err)
	}
	if end := compatEndOffset(t, adm, topic, 0); end != n {
		t.Errorf("end offset %d after deleting every record, want %d", end, n)
	}
}

// compatProduceRange produces testRecord(topic, i) for i in [from, to) to
// partition 0 and waits for every acknowledgement.
func compatProduceRange(t *testing.T, cl *kgo.Client, topic string, from, to int) {
	t.Helper()
	var rs []*kgo.Record
	for i := from; i < to; i++ {
		rs = append(rs, testRecord(topic, i))
	}
	if err := cl.ProduceSync(compatCtx(t, time.Minute), rs...).FirstErr(); err != nil {
		t.Fatalf("produce %d records to %s: %v", to-from, topic, err)
	}
}

// compatFetch sends one Fetch request for topic/partition at offset and
// returns that partition's answer.
func compatFetch(t *testing.T, cl *kgo.Client, topic string, partition int32, offset int64) kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxBytes, req.SessionEpoch = -1, 1<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, offset, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(compatCtx(t, 30*time.Second), cl)
	if err != nil {
		t.Fatalf("fetch %s/%d at %d: %v", topic, partition, offset, err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch %s/%d at %d: %+v", topic, partition, offset, resp)
	}
	return resp.Topics[0].Partitions[0]
}
