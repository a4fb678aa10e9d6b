package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/testbroker"
	"github.com/twmb/franz-go/pkg/kgo"
)

// groupTestBase is the CreateTime of the first record each partition gets;
// record i of a partition has timestamp groupTestBase + i seconds.
const groupTestBase = int64(1_700_000_000_000)

// produceAt writes n records to topic/partition with timestamps
// groupTestBase + (first+i) seconds.
func produceAt(t *testing.T, addr, topic string, partition int32, first, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for i := first; i < first+n; i++ {
		rs = append(rs, &kgo.Record{
			Topic:     topic,
			Partition: partition,
			Value:     []byte(strconv.Itoa(i)),
			Timestamp: time.UnixMilli(groupTestBase + int64(i)*1000),
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s/%d: %v", topic, partition, err)
	}
}

func groupDescribeJSON(t *testing.T, addr, group string) groupDescription {
	t.Helper()
	var ds []groupDescription
	out := sluiceRun(t, addr, "", "group", "describe", group, "--format", "json")
	if err := json.Unmarshal([]byte(out), &ds); err != nil || len(ds) != 1 {
		t.Fatalf("describe json: %v\n%s", err, out)
	}
	return ds[0]
}

// committedOffsets renders a description's partitions as "topic/p=offset/end/lag"
// sorted by topic and partition, for exact comparisons.
func committedOffsets(d groupDescription) string {
	var parts []string
	for _, p := range d.Partitions {
		parts = append(parts, fmt.Sprintf("%s/%d=%d/%d/%d", p.Topic, p.Partition, p.CurrentOffset, p.LogEndOffset, p.Lag))
	}
	return strings.Join(parts, " ")
}

func groupListJSON(t *testing.T, addr string, args ...string) []groupSummary {
	t.Helper()
	var gs []groupSummary
	out := sluiceRun(t, addr, "", append([]string{"group", "list", "--format", "json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &gs); err != nil {
		t.Fatalf("list json: %v\n%s", err, out)
	}
	return gs
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestGroupCommands(t *testing.T) {
	b := testbroker.Start(t)
	addr := b.Addr()
	const group = "g1"

	sluiceRun(t, addr, "", "topic", "create", "orders", "-p", "2")
	sluiceRun(t, addr, "", "topic", "create", "audit", "-p", "1")
	produceAt(t, addr, "orders", 0, 0, 6)
	produceAt(t, addr, "orders", 1, 0, 4)
	produceAt(t, addr, "audit", 0, 0, 3)

	// A group member consumes everything and commits.
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics("orders", "audit"),
		kgo.ClientID("grp-test"), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(100*time.Millisecond),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			cl.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	got := 0
	for got < 13 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 13 records before the deadline", got)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		got += fs.NumRecords()
	}

	// Before the first commit, the assigned partitions have no position:
	// "-" for current offset and lag, nothing in the total lag.
	waitFor(t, 20*time.Second, "a Stable group with one member", func() bool {
		d := groupDescribeJSON(t, addr, group)
		return d.State == "Stable" && d.NumMembers == 1
	})
	d := groupDescribeJSON(t, addr, group)
	if got, want := committedOffsets(d), "audit/0=-1/3/-1 orders/0=-1/6/-1 orders/1=-1/4/-1"; got != want || d.TotalLag != 0 {
		t.Fatalf("describe json before any commit: %s total %d; want %s total 0", got, d.TotalLag, want)
	}
	out := sluiceRun(t, addr, "", "group", "describe", group)
	for _, want := range []string{
		`(?m)^TOTAL-LAG\s+0$`,
		`(?m)^audit\s+0\s+-\s+3\s+-\s+grp-test-\S+$`,
		`(?m)^orders\s+0\s+-\s+6\s+-\s+grp-test-\S+$`,
		`(?m)^orders\s+1\s+-\s+4\s+-\s+grp-test-\S+$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("describe before any commit lacks %s:\n%s", want, out)
		}
	}

	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}

	// While the member is active: describe shows it, seek refuses.
	waitFor(t, 20*time.Second, "a Stable group with one member", func() bool {
		d := groupDescribeJSON(t, addr, group)
		return d.State == "Stable" && d.NumMembers == 1
	})
	out = sluiceRun(t, addr, "", "group", "describe", group)
	for _, want := range []string{
		`(?m)^STATE\s+Stable$`,
		`(?m)^MEMBERS\s+1$`,
		`(?m)^MEMBER-ID\s+INSTANCE-ID\s+CLIENT-ID\s+HOST\s+ASSIGNMENTS$`,
		`(?m)^\S+\s+-\s+grp-test\s+\S+\s+audit\[0\], orders\[0 1\]$`,
		`(?m)^orders\s+1\s+4\s+4\s+0\s+\S+$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("describe (active) lacks %s:\n%s", want, out)
		}
	}
	r := sluiceTry(t, addr, "", "group", "seek", group, "--to", "start")
	if r.err == nil || !strings.Contains(r.err.Error(), "active members") {
		t.Fatalf("seek with an active member: err=%v out=%q", r.err, r.out)
	}

	cl.Close() // leaves the group
	closed = true

	// Two more records on orders/1 after the commit: lag 2 there.
	produceAt(t, addr, "orders", 1, 4, 2)

	waitFor(t, 20*time.Second, "the group to be Empty", func() bool {
		gs := groupListJSON(t, addr)
		return len(gs) == 1 && gs[0].State == "Empty"
	})
	out = sluiceRun(t, addr, "", "group", "list")
	if want := "GROUP  STATE  PROTOCOL-TYPE\ng1     Empty  consumer\n"; out != want {
		t.Fatalf("list output:\n%q\nwant\n%q", out, want)
	}
	if gs := groupListJSON(t, addr, "--state", "Stable"); len(gs) != 0 {
		t.Fatalf("list --state Stable: %+v", gs)
	}
	if gs := groupListJSON(t, addr, "--state", "Empty"); len(gs) != 1 || gs[0].Group != group || gs[0].ProtocolType != "consumer" {
		t.Fatalf("list --state Empty: %+v", gs)
	}

	out = sluiceRun(t, addr, "", "group", "describe", group)
	for _, want := range []string{
		`(?m)^GROUP\s+g1$`,
		`(?m)^STATE\s+Empty$`,
		`(?m)^PROTOCOL-TYPE\s+consumer$`,
		`(?m)^MEMBERS\s+0$`,
		`(?m)^TOTAL-LAG\s+2$`,
		`(?m)^TOPIC\s+PARTITION\s+CURRENT-OFFSET\s+LOG-END-OFFSET\s+LAG\s+MEMBER$`,
		`(?m)^audit\s+0\s+3\s+3\s+0\s+-$`,
		`(?m)^orders\s+0\s+6\s+6\s+0\s+-$`,
		`(?m)^orders\s+1\s+4\s+6\s+2\s+-$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("describe lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "MEMBER-ID") {
		t.Errorf("describe of an empty group prints a members table:\n%s", out)
	}
	d = groupDescribeJSON(t, addr, group)
	if got, want := committedOffsets(d), "audit/0=3/3/0 orders/0=6/6/0 orders/1=4/6/2"; got != want || d.TotalLag != 2 || d.State != "Empty" {
		t.Fatalf("describe json: %s total %d state %s; want %s total 2", got, d.TotalLag, d.State, want)
	}

	// seek --to start on one topic.
	out = sluiceRun(t, addr, "", "group", "seek", group, "--to", "start", "--topics", "orders")
	if want := "TOPIC   PARTITION  PREVIOUS-OFFSET  NEW-OFFSET  STATUS\n" +
		"orders  0          6                0           OK\n" +
		"orders  1          4                0           OK\n"; out != want {
		t.Fatalf("seek start output:\n%q\nwant\n%q", out, want)
	}
	d = groupDescribeJSON(t, addr, group)
	if got, want := committedOffsets(d), "audit/0=3/3/0 orders/0=0/6/6 orders/1=0/6/6"; got != want || d.TotalLag != 12 {
		t.Fatalf("after seek start: %s total %d; want %s total 12", got, d.TotalLag, want)
	}

	// seek --to end on every committed topic.
	var srs []seekResult
	out = sluiceRun(t, addr, "", "group", "seek", group, "--to", "end", "--format", "json")
	if err := json.Unmarshal([]byte(out), &srs); err != nil || len(srs) != 3 {
		t.Fatalf("seek end json: %v\n%s", err, out)
	}
	d = groupDescribeJSON(t, addr, group)
	if got, want := committedOffsets(d), "audit/0=3/3/0 orders/0=6/6/0 orders/1=6/6/0"; got != want || d.TotalLag != 0 {
		t.Fatalf("after seek end: %s total %d; want %s", got, d.TotalLag, want)
	}

	// seek @timestamp: the first record at or after base+2.5s is offset 3
	// in both orders partitions.
	sluiceRun(t, addr, "", "group", "seek", group, "--to", "@"+strconv.FormatInt(groupTestBase+2500, 10), "--topics", "orders")
	d = groupDescribeJSON(t, addr, group)
	if got, want := committedOffsets(d), "audit/0=3/3/0 orders/0=3/6/3 orders/1=3/6/3"; got != want || d.TotalLag != 6 {
		t.Fatalf("after seek @ts: %s total %d; want %s", got, d.TotalLag, want)
	}
	// A timestamp after every record seeks to the end.
	sluiceRun(t, addr, "", "group", "seek", group, "--to", "@"+strconv.FormatInt(groupTestBase+3_600_000, 10), "--topics", "orders")
	d = groupDescribeJSON(t, addr, group)
	if got, want := committedOffsets(d), "audit/0=3/3/0 orders/0=6/6/0 orders/1=6/6/0"; got != want {
		t.Fatalf("after seek to a future @ts: %s; want %s", got, want)
	}

	// seek to an exact offset.
	sluiceRun(t, addr, "", "group", "seek", group, "--to", "1", "--topics", "audit")
	d = groupDescribeJSON(t, addr, group)
	if got, want := committedOffsets(d), "audit/0=1/3/2 orders/0=6/6/0 orders/1=6/6/0"; got != want || d.TotalLag != 2 {
		t.Fatalf("after seek 1: %s total %d; want %s", got, d.TotalLag, want)
	}

	if r := sluiceTry(t, addr, "", "group", "seek", group, "--to", "sometime"); r.err == nil || !strings.Contains(r.err.Error(), "--to") {
		t.Fatalf("bad --to: err=%v", r.err)
	}

	// offset-delete removes audit's offsets only.
	out = sluiceRun(t, addr, "", "group", "offset-delete", group, "--topic", "audit")
	if want := "TOPIC  PARTITION  STATUS\naudit  0          OK\n"; out != want {
		t.Fatalf("offset-delete output:\n%q\nwant\n%q", out, want)
	}
	d = groupDescribeJSON(t, addr, group)
	if got, want := committedOffsets(d), "orders/0=6/6/0 orders/1=6/6/0"; got != want {
		t.Fatalf("after offset-delete: %s; want %s", got, want)
	}
	var pss []partitionStatus
	out = sluiceRun(t, addr, "", "group", "offset-delete", group, "--topic", "orders", "-p", "1", "--format", "json")
	if err := json.Unmarshal([]byte(out), &pss); err != nil || len(pss) != 1 || pss[0].Partition != 1 || pss[0].Error != "" {
		t.Fatalf("offset-delete -p 1 json: %v\n%s", err, out)
	}
	// orders/1 has neither a commit nor a member now: it is not listed
	// (kadm's lag would show it lagging by its whole log), as
	// kafka-consumer-groups.sh does.
	produceAt(t, addr, "orders", 0, 6, 1) // lag 1 on orders/0
	d = groupDescribeJSON(t, addr, group)
	if got, want := committedOffsets(d), "orders/0=6/7/1"; got != want || d.TotalLag != 1 {
		t.Fatalf("after offset-delete -p 1: %s total %d; want %s total 1", got, d.TotalLag, want)
	}
	out = sluiceRun(t, addr, "", "group", "describe", group)
	wantOut := regexp.MustCompile(`(?s)TOTAL-LAG\s+1\n\nTOPIC\s+PARTITION\s+CURRENT-OFFSET\s+LOG-END-OFFSET\s+LAG\s+MEMBER\norders\s+0\s+6\s+7\s+1\s+-\n$`)
	if !wantOut.MatchString(out) {
		t.Fatalf("describe after offset-delete -p 1 lists other partitions or lag:\n%s", out)
	}

	// delete removes the group.
	out = sluiceRun(t, addr, "", "group", "delete", group)
	if want := "GROUP  STATUS\ng1     OK\n"; out != want {
		t.Fatalf("delete output:\n%q\nwant\n%q", out, want)
	}
	if gs := groupListJSON(t, addr); len(gs) != 0 {
		t.Fatalf("list after delete: %+v", gs)
	}
	if r := sluiceTry(t, addr, "", "group", "delete", group); r.err == nil || !strings.Contains(r.out, "GROUP_ID_NOT_FOUND") {
		t.Fatalf("deleting a deleted group: err=%v out=%q", r.err, r.out)
	}
}

// A KIP-848 group (the broker assigns) through the same commands.
func TestGroupCommandsKIP848(t *testing.T) {
	b := testbroker.Start(t)
	addr := b.Addr()
	const group = "g848"
	sluiceRun(t, addr, "", "topic", "create", "events", "-p", "3")
	for p := int32(0); p < 3; p++ {
		produceAt(t, addr, "events", p, 0, 5)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics("events"),
		kgo.ClientID("next-gen"), kgo.Balancers(kgo.StickyBalancer()), kgo.ServerSideBalancer(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	for got := 0; got < 15; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 15 records before the deadline", got)
		}
		got += fs.NumRecords()
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "a Stable KIP-848 group with one member and no lag", func() bool {
		d := groupDescribeJSON(t, addr, group)
		return d.State == "Stable" && d.NumMembers == 1 && d.TotalLag == 0 && len(d.Partitions) == 3
	})
	out := sluiceRun(t, addr, "", "group", "describe", group)
	for _, want := range []string{
		`(?m)^STATE\s+Stable$`,
		`(?m)^\S+\s+-\s+next-gen\s+\S+\s+events\[0 1 2\]$`,
		`(?m)^events\s+2\s+5\s+5\s+0\s+\S+$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("describe lacks %s:\n%s", want, out)
		}
	}
	if gs := groupListJSON(t, addr); len(gs) != 1 || gs[0].Group != group || gs[0].State != "Stable" {
		t.Fatalf("list: %+v", gs)
	}
}
