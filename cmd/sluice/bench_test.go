package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestBenchProduceConsume(t *testing.T) {
	b := newKfake(t)
	out := sluiceRun(t, b, "", "bench", "produce", "--topic", "bt", "--records", "20000", "--partitions", "3",
		"--producers", "2", "--acks", "all", "-z", "lz4", "--format", "json")
	var p benchResult
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("bench produce json: %v\n%s", err, out)
	}
	if p.Mode != "produce" || p.Records != 20000 || p.Errors != 0 || p.Bytes != 20000*100 ||
		p.RecordsPerSec <= 0 || p.MBPerSec <= 0 || p.P50Ms <= 0 || p.P50Ms > p.P99Ms || p.P99Ms > p.P999Ms || p.P999Ms > p.MaxMs {
		t.Fatalf("bench produce result: %+v", p)
	}
	ds := describeJSON(t, b, "bt")
	var hw int64
	for _, pd := range ds[0].Partitions {
		hw += pd.HighWatermark
	}
	if len(ds[0].Partitions) != 3 || hw != 20000 {
		t.Fatalf("bench topic has %d partitions and %d records", len(ds[0].Partitions), hw)
	}

	out = sluiceRun(t, b, "", "bench", "consume", "--topic", "bt", "--records", "20000")
	for _, want := range []string{`MODE\s+consume`, `RECORDS\s+20000`, `ERRORS\s+0`, `RECORDS/S\s+[1-9]\d*`, `MB/S\s+\d`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("bench consume output lacks %s:\n%s", want, out)
		}
	}
	// Asking for more than the topic holds reads what there is.
	c, err := runConsumeBench(context.Background(), benchConfig{Brokers: strings.Split(b, ","), Topic: "bt", Records: 1 << 30})
	if err != nil || c.Records != 20000 || c.Bytes != 20000*100 {
		t.Fatalf("consume more than available: %+v, %v", c, err)
	}
}

func TestBenchProduceRate(t *testing.T) {
	b := newKfake(t)
	start := time.Now()
	res, err := runProduceBench(context.Background(), benchConfig{
		Brokers: strings.Split(b, ","), Topic: "rate", Records: 2000, RecordSize: 10, Acks: "1",
		Compression: "none", Partitions: 1, Producers: 1, Linger: time.Millisecond, BatchBytes: 1 << 20, Rate: 10000,
	})
	if err != nil || res.Records != 2000 || res.Errors != 0 {
		t.Fatalf("rate-limited bench: %+v, %v", res, err)
	}
	// 2000 records at 10k/s cannot take less than about 200ms.
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("rate cap ignored: 2000 records in %v", d)
	}
	if _, err := runConsumeBench(context.Background(), benchConfig{Brokers: strings.Split(b, ","), Topic: "missing", Records: 1}); err == nil {
		t.Fatal("consume bench of a missing topic: expected an error")
	}
}
