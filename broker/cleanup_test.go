package broker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/broker"
	"github.com/sluice-io/sluice/internal/testbroker"
)

// TestCleanupPoliciesThroughConfigs drives retention and compaction the way
// a user does: topic configs set over the protocol, background work run by
// the broker.
func TestCleanupPoliciesThroughConfigs(t *testing.T) {
	b := testbroker.Start(t, func(c *broker.Config) {
		c.RetentionCheckInterval = 50 * time.Millisecond
		c.CleanerBackoff = 50 * time.Millisecond
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	str := func(s string) *string { return &s }

	// Retention by size: 1 KiB segments, keep about 4 KiB.
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{
		"segment.bytes": str("1024"), "retention.bytes": str("4096"),
	}, "sized"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "sized", Value: []byte(fmt.Sprintf("%0100d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	start := waitFor(t, func() (int64, bool) {
		s := startOffset(t, ctx, adm, "sized")
		return s, s > 0
	})
	if start >= 300 {
		t.Fatalf("retention deleted everything: log start %d", start)
	}

	// Compaction: three generations of ten keys, then a tombstone.
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{
		"cleanup.policy": str("compact"), "segment.bytes": str("1024"), "delete.retention.ms": str("0"),
	}, "compacted"); err != nil {
		t.Fatal(err)
	}
	for gen := 0; gen < 3; gen++ {
		for k := 0; k < 10; k++ {
			r := &kgo.Record{Topic: "compacted", Key: []byte(fmt.Sprint("k", k)), Value: []byte(fmt.Sprint("gen", gen))}
			if gen == 2 && k == 0 {
				r.Value = nil // tombstone
			}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Roll past the last record so it can be cleaned: the active segment is
	// never compacted.
	for i := 0; i < 20; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "compacted", Key: []byte("filler"), Value: []byte(fmt.Sprintf("%0100d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() (int, bool) {
		got := readAll(t, ctx, b.Addr(), "compacted")
		for k := 1; k < 10; k++ {
			if got[fmt.Sprint("k", k)] != "gen2" {
				return 0, false
			}
		}
		_, tomb := got["k0"]
		return len(got), !tomb && got["__count"] != "" && got["__old"] == ""
	})
}

func startOffset(t *testing.T, ctx context.Context, adm *kadm.Client, topic string) int64 {
	t.Helper()
	o, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := o.Lookup(topic, 0)
	return l.Offset
}

// readAll reads a topic to its end and returns the last value per key;
// "__old" is set when an older generation of a key is still there, and
// "__count" holds the number of records read.
func readAll(t *testing.T, ctx context.Context, addr, topic string) map[string]string {
	t.Helper()
	adm, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	end := kadm.NewClient(adm)
	ends, err := end.ListEndOffsets(ctx, topic)
	adm.Close()
	if err != nil {
		t.Fatal(err)
	}
	last, _ := ends.Lookup(topic, 0)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string]string{}
	n := 0
	for offset := int64(-1); offset < last.Offset-1; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			offset = r.Offset
			n++
			k := string(r.Key)
			if prev, ok := got[k]; ok && k != "filler" && prev != string(r.Value) {
				got["__old"] = k
			}
			if r.Value == nil {
				got[k] = ""
				delete(got, k)
			} else {
				got[k] = string(r.Value)
			}
		})
	}
	got["__count"] = fmt.Sprint(n)
	return got
}

// waitFor polls cond until it holds, for at most 20 s.
func waitFor[T any](t *testing.T, cond func() (T, bool)) T {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, ok := cond()
		if ok {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within 20s (last value %v)", v)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
