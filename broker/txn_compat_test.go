package broker_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/testbroker"
)

// TestTransactionsSarama: IBM/sarama's transactional producer commits one
// transaction and aborts another, over two partitions; read_committed
// consumers (franz-go, and sarama's own) see exactly the committed records,
// read_uncommitted sees both.
func TestTransactionsSarama(t *testing.T) {
	b := testbroker.Start(t)
	adm, _ := compatAdmin(t, b.Addr())
	const topic, perTxn = "txn-sarama", 20
	compatCreateTopic(t, adm, topic, 2, nil)

	cfg := sarama.NewConfig()
	cfg.ClientID = "sluice-txn-sarama"
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Idempotent = true
	cfg.Producer.Transaction.ID = "sarama-txn"
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Net.MaxOpenRequests = 1
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	cfg.Consumer.Return.Errors = true
	prod, err := sarama.NewSyncProducer([]string{b.Addr()}, cfg)
	if err != nil {
		t.Fatalf("sarama transactional producer: %v", err)
	}
	defer prod.Close()
	if !prod.IsTransactional() {
		t.Fatal("sarama producer is not transactional")
	}
	txn := func(prefix string, commit bool) {
		t.Helper()
		if err := prod.BeginTxn(); err != nil {
			t.Fatalf("begin: %v", err)
		}
		for i := 0; i < perTxn; i++ {
			m := &sarama.ProducerMessage{Topic: topic, Partition: int32(i % 2), Value: sarama.StringEncoder(fmt.Sprintf("%s-%02d", prefix, i))}
			if _, _, err := prod.SendMessage(m); err != nil {
				t.Fatalf("send %s-%d: %v", prefix, i, err)
			}
		}
		if commit {
			err = prod.CommitTxn()
		} else {
			err = prod.AbortTxn()
		}
		if err != nil {
			t.Fatalf("end %s (commit %v): %v (status %v)", prefix, commit, err, prod.TxnStatus())
		}
	}
	txn("committed", true)
	txn("aborted", false)

	got := oneBroker(b).ConsumeAll(t, topic, true, perTxn+1, 3*time.Second)
	slices.Sort(got)
	if len(got) != perTxn || !strings.HasPrefix(got[0], "committed-") || !strings.HasPrefix(got[len(got)-1], "committed-") {
		t.Fatalf("read_committed consumer got %q, want the %d committed records", got, perTxn)
	}
	if all := oneBroker(b).ConsumeAll(t, topic, false, 2*perTxn, 10*time.Second); len(all) != 2*perTxn {
		t.Fatalf("read_uncommitted consumer got %d records, want %d", len(all), 2*perTxn)
	}

	// sarama's consumer, read_committed, drops the aborted records itself
	// from the aborted-transactions list.
	cons, err := sarama.NewConsumer([]string{b.Addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for p := int32(0); p < 2; p++ {
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		var vals []string
		timeout := time.After(3 * time.Second)
	read:
		for {
			select {
			case m := <-pc.Messages():
				vals = append(vals, string(m.Value))
			case err := <-pc.Errors():
				t.Fatalf("sarama consume %d: %v", p, err)
			case <-timeout:
				break read
			}
		}
		pc.Close()
		if len(vals) != perTxn/2 {
			t.Fatalf("sarama read_committed consumer of partition %d got %q, want the %d committed records", p, vals, perTxn/2)
		}
		for _, v := range vals {
			if !strings.HasPrefix(v, "committed-") {
				t.Fatalf("sarama read_committed consumer got %q", v)
			}
		}
	}
}

// TestTransactionsKcat: kcat (librdkafka) produces in a transaction when
// given transactional.id: it initializes, writes its input and commits at
// the end. A read_committed franz-go consumer sees exactly those records;
// a read_committed kcat consumer skips the records of a transaction
// aborted in between.
func TestTransactionsKcat(t *testing.T) {
	kcatPath(t)
	b := testbroker.Start(t)
	adm, _ := compatAdmin(t, b.Addr())
	const topic = "txn-kcat"
	compatCreateTopic(t, adm, topic, 1, nil)

	kcatRun(t, []byte("k1\nk2\nk3\n"), "-P", "-b", b.Addr(), "-t", topic, "-p", "0",
		"-X", "transactional.id=kcat-txn", "-X", "transaction.timeout.ms=10000")
	if got := oneBroker(b).ConsumeAll(t, topic, true, 4, 3*time.Second); !slices.Equal(got, []string{"k1", "k2", "k3"}) {
		t.Fatalf("read_committed consumer got %q after kcat's transaction, want [k1 k2 k3]", got)
	}

	// An aborted transaction, then another kcat commit.
	cl := txnProducer(t, b.Addr(), "kcat-franz", topic)
	ctx := compatCtx(t, 30*time.Second)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, kgo.StringRecord("aborted-1"), kgo.StringRecord("aborted-2")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	kcatRun(t, []byte("k4\n"), "-P", "-b", b.Addr(), "-t", topic, "-p", "0", "-X", "transactional.id=kcat-txn")

	out := kcatRun(t, nil, "-C", "-b", b.Addr(), "-t", topic, "-o", "beginning", "-e", "-q",
		"-X", "isolation.level=read_committed", "-f", `%s\n`)
	if want := "k1\nk2\nk3\nk4\n"; !bytes.Equal(out, []byte(want)) {
		t.Fatalf("kcat read_committed consumer got %q, want %q", out, want)
	}
	out = kcatRun(t, nil, "-C", "-b", b.Addr(), "-t", topic, "-o", "beginning", "-e", "-q",
		"-X", "isolation.level=read_uncommitted", "-f", `%s\n`)
	if want := "k1\nk2\nk3\naborted-1\naborted-2\nk4\n"; !bytes.Equal(out, []byte(want)) {
		t.Fatalf("kcat read_uncommitted consumer got %q, want %q", out, want)
	}
}
