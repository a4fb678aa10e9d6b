package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestCLIAgainstBroker drives the sluice CLI against the real broker: topic
// administration, produce with keys and headers, and consume with offsets,
// formats and JSON output.
func TestCLIAgainstBroker(t *testing.T) {
	n := newNode(t)
	n.start()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := func(stdin string, args ...string) string {
		t.Helper()
		out, err := n.cli(ctx, stdin, args...)
		if err != nil {
			t.Fatalf("sluice %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	run("", "topic", "create", "events", "-p", "2", "-c", "retention.ms=3600000")
	if out := run("", "topic", "list"); !strings.Contains(out, "events") || !strings.Contains(out, "PARTITIONS") {
		t.Fatalf("topic list:\n%s", out)
	}
	if out, err := n.cli(ctx, "", "topic", "create", "events"); err == nil || !strings.Contains(out, "TOPIC_ALREADY_EXISTS") {
		t.Fatalf("creating an existing topic: err=%v\n%s", err, out)
	}
	if out, err := n.cli(ctx, "", "topic", "alter-config", "events", "--set", "retention.ms=abc"); err == nil || !strings.Contains(out, "INVALID_CONFIG") {
		t.Fatalf("bad config value accepted: err=%v\n%s", err, out)
	}
	run("", "topic", "alter-config", "events", "--set", "cleanup.policy=compact,delete")
	run("", "topic", "add-partitions", "events", "--num", "1")
	desc := run("", "topic", "describe", "events")
	for _, want := range []string{"cleanup.policy", "compact,delete", "retention.ms", "3600000"} {
		if !strings.Contains(desc, want) {
			t.Fatalf("describe lacks %q:\n%s", want, desc)
		}
	}
	if strings.Count(desc, "\n2  ") == 0 && !strings.Contains(desc, "\n2 ") {
		t.Fatalf("describe does not show partition 2 after add-partitions:\n%s", desc)
	}

	var lines []string
	for i := 0; i < 20; i++ {
		lines = append(lines, fmt.Sprintf("v%d", i))
	}
	run(strings.Join(lines, "\n")+"\n", "produce", "events", "-k", "k1", "-H", "src=cli", "-z", "zstd")
	// One key: every record is in one partition, in order.
	out := run("", "consume", "events", "-n", "20", "-f", "%k %v %h %o\n")
	got := strings.Split(strings.TrimSpace(out), "\n")
	if len(got) != 20 {
		t.Fatalf("consumed %d lines:\n%s", len(got), out)
	}
	for i, line := range got {
		if want := fmt.Sprintf("k1 v%d src=cli %d", i, i); line != want {
			t.Fatalf("line %d = %q, want %q", i, line, want)
		}
	}
	if out := run("", "consume", "events", "-o", "-3", "-n", "3", "-f", "%v\n"); out != "v17\nv18\nv19\n" {
		t.Fatalf("consume -o -3 = %q", out)
	}
	if out := run("", "consume", "events", "-o", "15", "-n", "2", "-f", "%v\n"); out != "v15\nv16\n" {
		t.Fatalf("consume -o 15 = %q", out)
	}
	jsonOut := run("", "consume", "events", "-n", "1", "--format", "json")
	var rec map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(jsonOut)), &rec); err != nil {
		t.Fatalf("consume --format json: %v\n%s", err, jsonOut)
	}
	if rec["value"] != "v0" || rec["key"] != "k1" {
		t.Fatalf("json record = %v", rec)
	}
	run("", "topic", "delete", "events")
	if out := run("", "topic", "list"); strings.Contains(out, "events") {
		t.Fatalf("topic still listed after delete:\n%s", out)
	}
	if out := run("", "cluster", "info"); !strings.Contains(out, n.kafka[strings.LastIndex(n.kafka, ":")+1:]) {
		t.Fatalf("cluster info does not show the broker port:\n%s", out)
	}
}
