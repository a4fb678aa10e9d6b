package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

func TestTopicLifecycle(t *testing.T) {
	b := newKfake(t)

	out := sluiceRun(t, b, "", "topic", "create", "orders", "-p", "3", "-r", "1", "-c", "cleanup.policy=compact")
	if want := "TOPIC   STATUS\norders  OK\n"; out != want {
		t.Fatalf("create output:\n%q\nwant\n%q", out, want)
	}
	sluiceRun(t, b, "", "topic", "create", "events")

	// A second create fails: the table says why and the command errors.
	r := sluiceTry(t, b, "", "topic", "create", "orders", "fresh")
	if r.err == nil || !strings.Contains(r.out, "TOPIC_ALREADY_EXISTS") || !regexp.MustCompile(`fresh\s+OK`).MatchString(r.out) {
		t.Fatalf("duplicate create: err=%v out=%q", r.err, r.out)
	}

	out = sluiceRun(t, b, "", "topic", "list")
	if !regexp.MustCompile(`(?m)^NAME\s+PARTITIONS\s+REPLICAS\n(.*\n)*orders\s+3\s+1$`).MatchString(out) {
		t.Fatalf("list output:\n%s", out)
	}
	var list []topicSummary
	if err := json.Unmarshal([]byte(sluiceRun(t, b, "", "topic", "list", "--format", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[0].Name != "events" || list[1].Name != "fresh" || list[2].Name != "orders" || list[2].Partitions != 3 {
		t.Fatalf("list json: %+v", list)
	}

	sluiceRun(t, b, "a\nb\nc\n", "produce", "orders", "-p", "1")
	out = sluiceRun(t, b, "", "topic", "describe", "orders")
	for _, want := range []string{
		`NAME\s+orders`,
		`PARTITIONS\s+3`,
		`cleanup.policy\s+compact\s+DYNAMIC_TOPIC_CONFIG`,
		`PARTITION\s+LEADER\s+EPOCH\s+REPLICAS\s+ISR\s+LOG-START-OFFSET\s+HIGH-WATERMARK`,
		`(?m)^1\s+0\s+\d+\s+\[0\]\s+\[0\]\s+0\s+3$`,
		`(?m)^2\s+0\s+\d+\s+\[0\]\s+\[0\]\s+0\s+0$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("describe output lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "DEFAULT_CONFIG") {
		t.Errorf("describe shows default configs without -a:\n%s", out)
	}

	sluiceRun(t, b, "", "topic", "alter-config", "orders", "--set", "retention.ms=1234", "--delete", "cleanup.policy")
	ds := describeJSON(t, b, "orders")
	cfgs := map[string]string{}
	for _, c := range ds[0].Configs {
		cfgs[c.Name] = c.Value
	}
	if cfgs["retention.ms"] != "1234" || cfgs["cleanup.policy"] != "" {
		t.Fatalf("configs after alter: %v", cfgs)
	}

	sluiceRun(t, b, "", "topic", "add-partitions", "orders", "--num", "2")
	ds = describeJSON(t, b, "orders")
	if len(ds[0].Partitions) != 5 || ds[0].Partitions[1].HighWatermark != 3 {
		t.Fatalf("after add-partitions: %+v", ds[0].Partitions)
	}

	out = sluiceRun(t, b, "", "topic", "delete", "orders", "events")
	if !regexp.MustCompile(`orders\s+OK\nevents\s+OK\n$`).MatchString(out) {
		t.Fatalf("delete output: %q", out)
	}
	if r := sluiceTry(t, b, "", "topic", "delete", "orders"); r.err == nil || !strings.Contains(r.out, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("deleting a missing topic: err=%v out=%q", r.err, r.out)
	}
	if r := sluiceTry(t, b, "", "topic", "describe", "orders"); r.err == nil || !strings.Contains(r.out, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("describing a missing topic: err=%v out=%q", r.err, r.out)
	}
	out = sluiceRun(t, b, "", "topic", "list")
	if strings.Contains(out, "orders") || strings.Contains(out, "events") {
		t.Fatalf("deleted topics still listed:\n%s", out)
	}
}

func describeJSON(t *testing.T, b string, topics ...string) []topicDescription {
	t.Helper()
	var ds []topicDescription
	out := sluiceRun(t, b, "", append([]string{"topic", "describe", "--format", "json"}, topics...)...)
	if err := json.Unmarshal([]byte(out), &ds); err != nil {
		t.Fatalf("describe json: %v\n%s", err, out)
	}
	return ds
}

func TestTopicBadInput(t *testing.T) {
	b := newKfake(t, kfake.SeedTopics(1, "t"))
	for _, args := range [][]string{
		{"topic", "create", "x", "-c", "novalue"},
		{"topic", "alter-config", "t"},
		{"topic", "add-partitions", "t"},
		{"topic", "list", "--format", "yaml"},
	} {
		if r := sluiceTry(t, b, "", args...); r.err == nil {
			t.Errorf("%v: expected an error", args)
		}
	}
	if r := sluiceTry(t, b, "", "topic", "add-partitions", "nope", "-n", "1"); r.err == nil || !strings.Contains(r.out, "UNKNOWN_TOPIC") {
		t.Errorf("add-partitions to a missing topic: err=%v out=%q", r.err, r.out)
	}
}

func TestClusterInfo(t *testing.T) {
	b := newKfake(t, kfake.SeedTopics(2, "a", "b"), kfake.ClusterID("test-cluster"))
	out := sluiceRun(t, b, "", "cluster", "info")
	for _, want := range []string{`ID\s+test-cluster`, `TOPICS\s+2`, `(?m)^ID\s+HOST\s+PORT\s+RACK$`, `(?m)^0\*?\s+127\.0\.0\.1\s+\d+`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("cluster info lacks %s:\n%s", want, out)
		}
	}
	var info clusterInfo
	if err := json.Unmarshal([]byte(sluiceRun(t, b, "", "cluster", "info", "--format", "json")), &info); err != nil {
		t.Fatal(err)
	}
	if info.ClusterID != "test-cluster" || len(info.Brokers) != 1 || info.Topics != 2 || info.Brokers[0].Port == 0 {
		t.Fatalf("cluster info json: %+v", info)
	}
}
