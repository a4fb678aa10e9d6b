package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestProduceConsumeRoundTrip(t *testing.T) {
	b := newKfake(t, kfake.SeedTopics(1, "t"))

	out := sluiceRun(t, b, "one\ntwo\n\nfour\nfive", "produce", "t", "-k", "K", "-H", "h1=v1", "-H", "h2=a=b", "-v", "-z", "zstd")
	if n := strings.Count(out, "Produced to partition 0 at offset"); n != 5 {
		t.Fatalf("produce -v printed %d lines:\n%s", n, out)
	}

	out = sluiceRun(t, b, "", "consume", "t", "-n", "5", "-f", `%t|%p|%o|%k|%v|%h\n`)
	want := "t|0|0|K|one|h1=v1,h2=a=b\n" +
		"t|0|1|K|two|h1=v1,h2=a=b\n" +
		"t|0|2|K||h1=v1,h2=a=b\n" +
		"t|0|3|K|four|h1=v1,h2=a=b\n" +
		"t|0|4|K|five|h1=v1,h2=a=b\n"
	if out != want {
		t.Fatalf("consume output:\n%s\nwant:\n%s", out, want)
	}

	// Default format is the value and a newline; -n stops early.
	if out := sluiceRun(t, b, "", "consume", "t", "-n", "2"); out != "one\ntwo\n" {
		t.Fatalf("default format: %q", out)
	}
	if out := sluiceRun(t, b, "", "consume", "t", "-o", "-2", "-n", "2", "-f", `%o:%v\t`); out != "3:four\t4:five\t" {
		t.Fatalf("-o -2: %q", out)
	}
	if out := sluiceRun(t, b, "", "consume", "t", "-o", "3", "-n", "1", "-f", `%o %V%%\n`); out != "3 4%\n" {
		t.Fatalf("-o 3: %q", out)
	}
	if out := sluiceRun(t, b, "", "consume", "t", "-o", "+1", "-n", "1"); out != "two\n" {
		t.Fatalf("-o +1: %q", out)
	}

	out = sluiceRun(t, b, "", "consume", "t", "-n", "3", "--format", "json")
	sc := bufio.NewScanner(strings.NewReader(out))
	var recs []jsonRecord
	for sc.Scan() {
		var r jsonRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("json line %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	if len(recs) != 3 || recs[1].Value != "two" || recs[1].Offset != 1 || recs[1].Key == nil || *recs[1].Key != "K" ||
		len(recs[1].Headers) != 2 || recs[1].Headers[1] != (jsonHeader{"h2", "a=b"}) || recs[1].Timestamp <= 0 {
		t.Fatalf("json records: %+v", recs)
	}
}

func TestConsumeOffsetsAcrossPartitions(t *testing.T) {
	b := newKfake(t, kfake.SeedTopics(2, "p2"))
	for p := range 2 {
		sluiceRun(t, b, fmt.Sprintf("p%d-a\np%d-b\np%d-c\n", p, p, p), "produce", "p2", "-p", fmt.Sprint(p))
	}
	// -N is per partition: the last record of each.
	out := sluiceRun(t, b, "", "consume", "p2", "-o", "-1", "-n", "2", "-f", `%p %v\n`)
	if lines := sortedLines(out); lines != "0 p0-c\n1 p1-c" {
		t.Fatalf("-o -1 over two partitions: %q", out)
	}
	// -p restricts partitions; more back than exists clamps to the start.
	if out := sluiceRun(t, b, "", "consume", "p2", "-p", "1", "-o", "-10", "-n", "3"); out != "p1-a\np1-b\np1-c\n" {
		t.Fatalf("-p 1 -o -10: %q", out)
	}
}

func TestConsumeFromTimestamp(t *testing.T) {
	b := newKfake(t, kfake.SeedTopics(1, "ts"))
	cl, err := kgo.NewClient(kgo.SeedBrokers(b), kgo.DefaultProduceTopic("ts"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := 1; i <= 5; i++ {
		r := &kgo.Record{Value: []byte(fmt.Sprint("v", i)), Timestamp: time.UnixMilli(int64(i * 1000))}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if out := sluiceRun(t, b, "", "consume", "ts", "-o", "@2500", "-n", "3", "-f", `%T %v\n`); out != "3000 v3\n4000 v4\n5000 v5\n" {
		t.Fatalf("-o @2500: %q", out)
	}
	if out := sluiceRun(t, b, "", "consume", "ts", "-o", "@2000", "-n", "1"); out != "v2\n" {
		t.Fatalf("-o @2000: %q", out)
	}
}

// With -o end the consumer waits for records produced after it started, and
// exits as soon as -n of them were printed.
func TestConsumeEndWaitsForNewRecords(t *testing.T) {
	b := newKfake(t, kfake.SeedTopics(1, "e"))
	sluiceRun(t, b, "old1\nold2\n", "produce", "e")
	done := make(chan cliResult, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() { done <- sluiceRunCtx(ctx, b, "", "consume", "e", "-o", "end", "-n", "2") }()
	for i := 0; ; i++ {
		select {
		case r := <-done:
			if r.err != nil || r.out != "new\nnew\n" {
				t.Fatalf("consume -o end: err=%v out=%q stderr=%q", r.err, r.out, r.errOut)
			}
			return
		case <-time.After(100 * time.Millisecond):
			sluiceRun(t, b, "new\n", "produce", "e")
		}
	}
}

// Without -n, consume runs until interrupted and then exits cleanly.
func TestConsumeUntilCancelled(t *testing.T) {
	b := newKfake(t, kfake.SeedTopics(1, "c"))
	sluiceRun(t, b, "a\nb\n", "produce", "c")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if r := sluiceRunCtx(ctx, b, "", "consume", "c"); r.err != nil || r.out != "a\nb\n" {
		t.Fatalf("consume until cancelled: err=%v out=%q", r.err, r.out)
	}
}

func TestProduceFailureExitsNonZero(t *testing.T) {
	b := newKfake(t) // no topics and no auto-creation
	r := sluiceTry(t, b, "x\ny\n", "produce", "missing", "--delivery-timeout", "3s")
	if r.err == nil || !strings.Contains(r.err.Error(), "2 of 2 records failed") || !strings.Contains(r.errOut, "record 1:") {
		t.Fatalf("produce to a missing topic: err=%v stderr=%q", r.err, r.errOut)
	}
	for _, args := range [][]string{
		{"produce", "t", "--acks", "2"},
		{"produce", "t", "-z", "brotli"},
		{"produce", "t", "-H", "nokey"},
		{"consume", "t", "-o", "soon"},
		{"consume", "t", "-f", "%x"},
		{"consume", "t", "-f", "%v", "--format", "json"},
	} {
		if r := sluiceTry(t, b, "", args...); r.err == nil {
			t.Errorf("%v: expected an error", args)
		}
	}
}

func sortedLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func TestConsumeMissingTopicAndUnreachableCluster(t *testing.T) {
	b := newKfake(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if r := sluiceRunCtx(ctx, b, "", "consume", "nothere"); r.err != nil || !strings.Contains(r.errOut, "topic nothere is not available yet") {
		t.Fatalf("consume of a missing topic: err=%v stderr=%q", r.err, r.errOut)
	}
	if r := sluiceTry(t, "127.0.0.1:1", "", "consume", "x", "-n", "1"); r.err == nil || !strings.Contains(r.err.Error(), "look up topics") {
		t.Fatalf("consume from an unreachable cluster: err=%v", r.err)
	}
}

func TestProduceVerboseJSON(t *testing.T) {
	b := newKfake(t, kfake.SeedTopics(3, "j"))
	out := sluiceRun(t, b, "a\nb\n", "produce", "j", "-p", "2", "-v", "--format", "json", "--acks", "1", "-z", "gzip")
	var got []producedJSON
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var p producedJSON
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		got = append(got, p)
	}
	if len(got) != 2 || got[0].Topic != "j" || got[0].Partition != 2 || got[0].Offset != 0 || got[1].Offset != 1 || got[1].Timestamp <= 0 {
		t.Fatalf("produce -v json: %+v", got)
	}
}
