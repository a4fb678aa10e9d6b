package txn

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

type memLog struct {
	mu   sync.Mutex
	recs []Record
}

func (l *memLog) Append(_ string, recs []Record) <-chan error {
	l.mu.Lock()
	l.recs = append(l.recs, recs...)
	l.mu.Unlock()
	ch := make(chan error, 1)
	ch <- nil
	return ch
}

// markerLog records the markers written; fail makes the next writes fail.
type markerLog struct {
	mu      sync.Mutex
	written []string
	fail    bool
}

func (m *markerLog) WriteMarkers(pid int64, epoch int16, commit bool, parts map[string][]int32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errors.New("disk on fire")
	}
	m.written = append(m.written, fmt.Sprintf("pid %d epoch %d commit %v %v", pid, epoch, commit, parts))
	return nil
}

func (m *markerLog) list() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.written...)
}

func testCoordinator(log *memLog, markers *markerLog) *Coordinator {
	var mu sync.Mutex
	next := int64(1000)
	return New(Config{
		Log: log, Markers: markers, CheckInterval: 10 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		NewProducerID: func() (int64, error) {
			mu.Lock()
			defer mu.Unlock()
			next++
			return next, nil
		},
		Partitions: func(topic string) int32 {
			if topic == "t" {
				return 3
			}
			return -1
		},
	})
}

func TestTransactionLifecycle(t *testing.T) {
	markers := &markerLog{}
	c := testCoordinator(&memLog{}, markers)
	defer c.Close()
	pid, epoch, code := c.InitProducerID("tx", time.Minute, -1, -1)
	if code != 0 || epoch != 0 {
		t.Fatalf("init: pid %d epoch %d code %d", pid, epoch, code)
	}
	if codes := c.AddPartitions("tx", pid, epoch, []TP{{"t", 0}, {"nope", 0}}, false); codes[0] != kerr.OperationNotAttempted.Code || codes[1] != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("add with an unknown topic: %v", codes)
	}
	if code := c.Verify(pid, epoch, "t", 0); code != kerr.InvalidTxnState.Code {
		t.Fatalf("verify before any add: %d, want INVALID_TXN_STATE", code)
	}
	if codes := c.AddPartitions("tx", pid, epoch, []TP{{"t", 0}, {"t", 2}}, false); codes[0] != 0 || codes[1] != 0 {
		t.Fatalf("add: %v", codes)
	}
	if code := c.Verify(pid, epoch, "t", 2); code != 0 {
		t.Fatalf("verify of an added partition: %d", code)
	}
	if code := c.Verify(pid, epoch, "t", 1); code != kerr.InvalidTxnState.Code {
		t.Fatalf("verify of a partition not added: %d, want INVALID_TXN_STATE", code)
	}
	if d := c.Describe("tx"); d.State != "Ongoing" || len(d.Topics) != 1 || len(d.Topics[0].Partitions) != 2 {
		t.Fatalf("describe ongoing: %+v", d)
	}
	if code := c.EndTxn("tx", pid, epoch, true); code != 0 {
		t.Fatalf("commit: %d", code)
	}
	want := fmt.Sprintf("pid %d epoch 0 commit true map[t:[0 2]]", pid)
	if got := markers.list(); len(got) != 1 || got[0] != want {
		t.Fatalf("markers = %v, want [%s]", got, want)
	}
	if code := c.EndTxn("tx", pid, epoch, true); code != 0 {
		t.Fatalf("retried commit: %d, want success", code)
	}
	if code := c.EndTxn("tx", pid, epoch, false); code != kerr.InvalidTxnState.Code {
		t.Fatalf("abort after commit: %d, want INVALID_TXN_STATE", code)
	}
	if code := c.Verify(pid, epoch, "t", 0); code != kerr.InvalidTxnState.Code {
		t.Fatalf("verify after the commit: %d, want INVALID_TXN_STATE (a late write must not land)", code)
	}
	// A new producer of the same id fences the old one.
	pid2, epoch2, code := c.InitProducerID("tx", time.Minute, -1, -1)
	if code != 0 || pid2 != pid || epoch2 != 1 {
		t.Fatalf("re-init: pid %d epoch %d code %d", pid2, epoch2, code)
	}
	if codes := c.AddPartitions("tx", pid, epoch, []TP{{"t", 1}}, false); codes[0] != kerr.ProducerFenced.Code {
		t.Fatalf("old producer adding: %v, want PRODUCER_FENCED", codes)
	}
	if code := c.Verify(pid, epoch, "t", 0); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("old producer writing: %d, want INVALID_PRODUCER_EPOCH", code)
	}
	if codes := c.AddPartitions("tx", 5, epoch2, []TP{{"t", 1}}, false); codes[0] != kerr.InvalidProducerIDMapping.Code {
		t.Fatalf("wrong producer id: %v", codes)
	}
	if l := c.List(ListFilter{States: []string{"CompleteCommit", "Empty"}}); len(l) != 1 || l[0].TransactionalID != "tx" {
		t.Fatalf("list: %+v", l)
	}
}

func TestTransactionFencedWhileOngoing(t *testing.T) {
	markers := &markerLog{}
	c := testCoordinator(&memLog{}, markers)
	defer c.Close()
	pid, epoch, _ := c.InitProducerID("tx", time.Minute, -1, -1)
	c.AddPartitions("tx", pid, epoch, []TP{{"t", 1}}, false)
	if _, _, code := c.InitProducerID("tx", time.Minute, -1, -1); code != kerr.ConcurrentTransactions.Code {
		t.Fatalf("init while ongoing: %d, want CONCURRENT_TRANSACTIONS", code)
	}
	var newEpoch int16
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, e, code := c.InitProducerID("tx", time.Minute, -1, -1)
		if code == 0 {
			newEpoch = e
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("init never succeeded: %d", code)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The abort was written at a bumped epoch, which fences the old
	// producer's late writes in the partitions themselves.
	want := fmt.Sprintf("pid %d epoch 1 commit false map[t:[1]]", pid)
	if got := markers.list(); len(got) != 1 || got[0] != want || newEpoch != 2 {
		t.Fatalf("markers %v, new epoch %d; want [%s], epoch 2", got, newEpoch, want)
	}
	if code := c.EndTxn("tx", pid, epoch, true); code != kerr.ProducerFenced.Code {
		t.Fatalf("old producer committing: %d, want PRODUCER_FENCED", code)
	}
}

func TestTransactionTimeout(t *testing.T) {
	markers := &markerLog{}
	c := testCoordinator(&memLog{}, markers)
	defer c.Close()
	c.Start()
	pid, epoch, _ := c.InitProducerID("tx", 50*time.Millisecond, -1, -1)
	c.AddPartitions("tx", pid, epoch, []TP{{"t", 0}}, false)
	deadline := time.Now().Add(5 * time.Second)
	for c.Describe("tx").State != "CompleteAbort" {
		if time.Now().After(deadline) {
			t.Fatalf("the timed-out transaction is %s", c.Describe("tx").State)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code := c.EndTxn("tx", pid, epoch, true); code != kerr.ProducerFenced.Code {
		t.Fatalf("commit after the timeout: %d, want PRODUCER_FENCED", code)
	}
}

func TestTransactionReload(t *testing.T) {
	log, markers := &memLog{}, &markerLog{}
	c := testCoordinator(log, markers)
	pid, epoch, _ := c.InitProducerID("done", time.Minute, -1, -1)
	c.AddPartitions("done", pid, epoch, []TP{{"t", 0}}, false)
	c.EndTxn("done", pid, epoch, false)
	pid2, epoch2, _ := c.InitProducerID("open", time.Minute, -1, -1)
	c.AddPartitions("open", pid2, epoch2, []TP{{"t", 1}}, false)
	// "open" crashes between its PrepareCommit record and its markers.
	markers.fail = true
	if code := c.EndTxn("open", pid2, epoch2, true); code != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("commit with failing markers: %d", code)
	}
	c.Close()

	markers2 := &markerLog{}
	c2 := testCoordinator(&memLog{}, markers2)
	defer c2.Close()
	for _, r := range log.recs {
		if err := c2.Load(r.Key, r.Value); err != nil {
			t.Fatal(err)
		}
	}
	if d := c2.Describe("done"); d.State != "CompleteAbort" || d.ProducerID != pid {
		t.Fatalf("reloaded done: %+v", d)
	}
	if d := c2.Describe("open"); d.State != "PrepareCommit" {
		t.Fatalf("reloaded open: %+v", d)
	}
	c2.Start()
	deadline := time.Now().Add(5 * time.Second)
	for c2.Describe("open").State != "CompleteCommit" {
		if time.Now().After(deadline) {
			t.Fatalf("the prepared commit was not finished after the restart: %s", c2.Describe("open").State)
		}
		time.Sleep(10 * time.Millisecond)
	}
	want := fmt.Sprintf("pid %d epoch 0 commit true map[t:[1]]", pid2)
	if got := markers2.list(); len(got) != 1 || got[0] != want {
		t.Fatalf("markers after the restart = %v, want [%s]", got, want)
	}
	// The next producer of "done" continues its epochs.
	if _, e, code := c2.InitProducerID("done", time.Minute, -1, -1); code != 0 || e != epoch+1 {
		t.Fatalf("init after reload: epoch %d code %d, want %d", e, code, epoch+1)
	}
}

// TestInitProducerIDRetryDoesNotUnfence: a producer re-initializing with
// its old (id, epoch) (KIP-360) after a newer producer of the same
// transactional id took the next epoch is fenced. It used to be taken for
// a retry of its own bump and handed the newer producer's epoch, so the
// two shared an epoch and the zombie could write and end transactions.
func TestInitProducerIDRetryDoesNotUnfence(t *testing.T) {
	c := testCoordinator(&memLog{}, &markerLog{})
	defer c.Close()
	pid, old, _ := c.InitProducerID("tx", time.Minute, -1, -1)
	_, cur, code := c.InitProducerID("tx", time.Minute, -1, -1) // the new producer
	if code != 0 || cur != old+1 {
		t.Fatalf("second init: epoch %d code %d", cur, code)
	}
	if p, e, code := c.InitProducerID("tx", time.Minute, pid, old); code != kerr.ProducerFenced.Code {
		t.Fatalf("the zombie's re-init got pid %d epoch %d code %d, want PRODUCER_FENCED", p, e, code)
	}
	// A genuine KIP-360 bump, and a retry of it whose answer was lost,
	// still work.
	p, bumped, code := c.InitProducerID("tx", time.Minute, pid, cur)
	if code != 0 || p != pid || bumped != cur+1 {
		t.Fatalf("bump: pid %d epoch %d code %d", p, bumped, code)
	}
	if p, e, code := c.InitProducerID("tx", time.Minute, pid, cur); code != 0 || p != pid || e != bumped {
		t.Fatalf("retried bump: pid %d epoch %d code %d, want epoch %d", p, e, code, bumped)
	}
	// The transaction timing out fences the producer: re-initializing with
	// the epoch it held is refused.
	c.AddPartitions("tx", pid, bumped, []TP{{"t", 0}}, false)
	c.check(time.Now().Add(2 * time.Minute))
	deadline := time.Now().Add(5 * time.Second)
	for c.Describe("tx").State != "CompleteAbort" {
		if time.Now().After(deadline) {
			t.Fatalf("the timed-out transaction is %s", c.Describe("tx").State)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if p, e, code := c.InitProducerID("tx", time.Minute, pid, bumped); code != kerr.ProducerFenced.Code {
		t.Fatalf("re-init after the timeout fence got pid %d epoch %d code %d, want PRODUCER_FENCED", p, e, code)
	}
}

// failingLog fails appends while fail is set.
type failingLog struct {
	memLog
	fail bool
}

func (l *failingLog) Append(id string, recs []Record) <-chan error {
	if l.fail {
		ch := make(chan error, 1)
		ch <- errors.New("disk full")
		return ch
	}
	return l.memLog.Append(id, recs)
}

// A partition whose addition could not be written is not in the
// transaction: the client's retry writes it, so a crash cannot leave it
// out of the transaction's markers.
func TestAddPartitionsUndoneWhenNotWritten(t *testing.T) {
	log := &failingLog{}
	c := New(Config{
		Log: log, Markers: &markerLog{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		NewProducerID: func() (int64, error) { return 7, nil },
		Partitions:    func(string) int32 { return 3 },
	})
	defer c.Close()
	pid, epoch, _ := c.InitProducerID("tx", time.Minute, -1, -1)
	log.fail = true
	if codes := c.AddPartitions("tx", pid, epoch, []TP{{"t", 1}}, false); codes[0] != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("add with a failing log: %v", codes)
	}
	if d := c.Describe("tx"); d.State != "Empty" || len(d.Topics) != 0 {
		t.Fatalf("after the failed add: %s %v, want Empty with no partitions", d.State, d.Topics)
	}
	log.fail = false
	n := len(log.recs)
	if codes := c.AddPartitions("tx", pid, epoch, []TP{{"t", 1}}, false); codes[0] != 0 || len(log.recs) != n+1 {
		t.Fatalf("retried add: %v, %d records written", codes, len(log.recs)-n)
	}
}
