package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRestartKeepsTopicsConfigsRecords stops the node cleanly and starts it
// again: every topic, partition count, config override and record is back.
func TestRestartKeepsTopicsConfigsRecords(t *testing.T) {
	n := newNode(t)
	n.start()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := admin(t, n.kafka)
	retention := "3600000"
	if _, err := adm.CreateTopic(ctx, 4, 1, map[string]*string{"retention.ms": &retention}, "orders"); err != nil {
		t.Fatal(err)
	}
	policy := "compact"
	if _, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"cleanup.policy": &policy}, "users"); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.kafka), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	const perTopic = 5000
	for _, topic := range []string{"orders", "users"} {
		for i := 0; i < perTopic; i++ {
			cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("%s-%d", topic, i))}, nil)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	before := snapshot(t, ctx, adm)

	n.stop()
	took := n.start()
	t.Logf("restart took %v", took)
	after := snapshot(t, ctx, admin(t, n.kafka))
	if before != after {
		t.Fatalf("state changed across restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	for _, topic := range []string{"orders", "users"} {
		out, err := n.cli(ctx, "", "consume", topic, "-n", fmt.Sprint(perTopic), "-f", "%v\n")
		if err != nil {
			t.Fatalf("consume %s: %v\n%s", topic, err, out)
		}
		seen := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			seen[line] = true
		}
		for i := 0; i < perTopic; i++ {
			if v := fmt.Sprintf("%s-%d", topic, i); !seen[v] {
				t.Fatalf("record %s missing after restart", v)
			}
		}
	}
}

// snapshot renders topics, partition offsets and non-default configs.
func snapshot(t *testing.T, ctx context.Context, adm *kadm.Client) string {
	t.Helper()
	var b strings.Builder
	details, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range details.Sorted() {
		fmt.Fprintf(&b, "topic %s id=%s partitions=%d\n", name.Topic, name.ID, len(name.Partitions))
	}
	ends, err := adm.ListEndOffsets(ctx, details.Names()...)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	ends.Each(func(o kadm.ListedOffset) {
		lines = append(lines, fmt.Sprintf("end %s/%d=%d\n", o.Topic, o.Partition, o.Offset))
	})
	sort.Strings(lines)
	b.WriteString(strings.Join(lines, ""))
	cfgs, err := adm.DescribeTopicConfigs(ctx, details.Names()...)
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range cfgs {
		for _, c := range rc.Configs {
			if c.Source == 1 {
				fmt.Fprintf(&b, "config %s %s=%s\n", rc.Name, c.Key, c.MaybeValue())
			}
		}
	}
	return b.String()
}
