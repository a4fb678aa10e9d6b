package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/testbroker"
)

func TestTxnCommands(t *testing.T) {
	b := testbroker.Start(t)
	addr := b.Addr()
	sluiceRun(t, addr, "", "topic", "create", "payments", "-p", "3")
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()

	// One producer commits a transaction; another leaves one open on
	// partitions 0 and 2.
	done, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("tx-done"), kgo.DefaultProduceTopic("payments"))
	if err != nil {
		t.Fatal(err)
	}
	defer done.Close()
	if err := done.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := done.ProduceSync(ctx, kgo.StringRecord("a")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := done.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	open, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("tx-open"), kgo.DefaultProduceTopic("payments"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []int32{2, 0} {
		if err := open.ProduceSync(ctx, &kgo.Record{Value: []byte("b"), Partition: p}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	list := sluiceRun(t, addr, "", "txn", "list")
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "TRANSACTIONAL-ID") ||
		!strings.Contains(lines[1], "tx-done") || !strings.HasSuffix(lines[1], "CompleteCommit") ||
		!strings.Contains(lines[2], "tx-open") || !strings.HasSuffix(lines[2], "Ongoing") {
		t.Fatalf("txn list:\n%s", list)
	}
	if only := sluiceRun(t, addr, "", "txn", "list", "--state", "Ongoing"); strings.Contains(only, "tx-done") || !strings.Contains(only, "tx-open") {
		t.Fatalf("txn list --state Ongoing:\n%s", only)
	}
	if only := sluiceRun(t, addr, "", "txn", "list", "--pattern", "tx-d.*"); !strings.Contains(only, "tx-done") || strings.Contains(only, "tx-open") {
		t.Fatalf("txn list --pattern:\n%s", only)
	}

	desc := sluiceRun(t, addr, "", "txn", "describe", "tx-open", "nope")
	for _, want := range []string{"state:", "Ongoing", "timeout:", "1m0s", "started:", "payments 0,2", "nope: "} {
		if !strings.Contains(desc, want) {
			t.Fatalf("txn describe lacks %q:\n%s", want, desc)
		}
	}
	var js []txnDetail
	if err := json.Unmarshal([]byte(sluiceRun(t, addr, "", "--format", "json", "txn", "describe", "tx-open")), &js); err != nil {
		t.Fatal(err)
	}
	if len(js) != 1 || js[0].State != "Ongoing" || len(js[0].Partitions["payments"]) != 2 || js[0].ProducerID < 0 {
		t.Fatalf("txn describe --format json: %+v", js)
	}
	if err := open.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	if after := sluiceRun(t, addr, "", "txn", "describe", "tx-open"); !strings.Contains(after, "CompleteAbort") || strings.Contains(after, "partitions:") {
		t.Fatalf("txn describe after the abort:\n%s", after)
	}
}
