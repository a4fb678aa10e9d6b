// Package txn is the transaction coordinator: it maps transactional ids to
// producer ids and epochs, tracks the partitions of each transaction and
// drives it through Kafka's states (Empty, Ongoing, PrepareCommit or
// PrepareAbort, CompleteCommit or CompleteAbort), writing every change to
// a Log in the layout of Kafka's __transaction_state and rebuilding from
// it at start. Ending a transaction writes commit or abort markers to each
// of its partitions through Markers, before the transaction completes.
//
// Like package group it knows nothing of the network or of partitions'
// storage: the broker binds it to __transaction_state and to the logs.
package txn

import (
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record is one __transaction_state record; a nil Value is a tombstone.
type Record struct {
	Key, Value []byte
}

// Log is where the coordinator writes its records; the channel reports
// when they are durable.
type Log interface {
	Append(txnID string, recs []Record) <-chan error
}

// Markers writes transaction markers. If it has a Close method, the
// coordinator's Close calls it once no end is running any more.
type Markers interface {
	// WriteMarkers appends a commit or abort marker of the producer at
	// the epoch to every partition (topic → partitions) and returns once
	// they are durable. Partitions that no longer exist are skipped.
	WriteMarkers(producerID int64, epoch int16, commit bool, partitions map[string][]int32) error
}

// Config configures a Coordinator.
type Config struct {
	Log     Log
	Markers Markers
	// NewProducerID hands out a producer id no client has had.
	NewProducerID func() (int64, error)
	// Partitions returns a topic's partition count, -1 when it does not
	// exist.
	Partitions func(topic string) int32
	// MaxTimeout is transaction.max.timeout.ms (15 min).
	MaxTimeout time.Duration
	// IDExpiration is transactional.id.expiration.ms (7 days): idle
	// transactional ids are forgotten after it.
	IDExpiration time.Duration
	// CheckInterval is how often timed-out transactions are aborted
	// (transaction.abort.timed.out.transaction.cleanup.interval.ms, 10 s).
	CheckInterval time.Duration
	Logger        *slog.Logger

	// PartitionOf maps a transactional id to its __transaction_state
	// partition (-1 while the topic does not exist). When set, the
	// coordinator serves only the ids of partitions loaded with
	// LoadPartition (the partitions this broker leads) and answers
	// NOT_COORDINATOR for the others; nil serves every id.
	PartitionOf func(id string) int32
	// Clustered tells that other brokers coordinate some producers: a
	// transactional write of a producer id unknown here is not refused by
	// AppendVerified, as it is its own coordinator's to check.
	Clustered bool
}

// Coordinator holds every transactional id of this broker.
type Coordinator struct {
	cfg     Config
	mu      sync.RWMutex // read-locked by the produce path (Verify, AppendVerified)
	txns    map[string]*txn
	byPID   map[int64]*txn
	closed  bool
	started bool // Start ran
	stop    chan struct{}
	wg      sync.WaitGroup
	parts   partitions // with PartitionOf: the partitions served
}

// txn is the state of one transactional id. Guarded by Coordinator.mu.
type txn struct {
	id          string
	producerID  int64
	epoch       int16
	lastEpoch   int16 // the epoch before a KIP-360 bump (a retry of it gets epoch), else -1
	timeout     time.Duration
	state       kmsg.TransactionState
	partitions  map[string]map[int32]bool
	started     time.Time // when the ongoing transaction began
	updated     time.Time
	busy        bool // an end (commit, abort, fence) is being written
	lastOutcome kmsg.TransactionState
}

// Kafka's transaction states.
const (
	Empty          kmsg.TransactionState = 0
	Ongoing        kmsg.TransactionState = 1
	PrepareCommit  kmsg.TransactionState = 2
	PrepareAbort   kmsg.TransactionState = 3
	CompleteCommit kmsg.TransactionState = 4
	CompleteAbort  kmsg.TransactionState = 5
	Dead           kmsg.TransactionState = 6
)

// New returns an empty coordinator; Load fills it from the log and Start
// begins the timeout checks.
func New(cfg Config) *Coordinator {
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = 15 * time.Minute
	}
	if cfg.IDExpiration <= 0 {
		cfg.IDExpiration = 7 * 24 * time.Hour
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Partitions == nil {
		cfg.Partitions = func(string) int32 { return -1 }
	}
	return &Coordinator{cfg: cfg, txns: map[string]*txn{}, byPID: map[int64]*txn{}, stop: make(chan struct{}), parts: newPartitions()}
}

// Close stops the background checks and waits for them; later requests
// get COORDINATOR_NOT_AVAILABLE.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.stop)
	c.mu.Unlock()
	c.wg.Wait()
	if cl, ok := c.cfg.Markers.(interface{ Close() }); ok {
		cl.Close()
	}
}

// record is t as Kafka stores it (TxnMetadataValue v0).
func (t *txn) record() Record {
	k := kmsg.NewTxnMetadataKey()
	k.TransactionalID = t.id
	v := kmsg.NewTxnMetadataValue()
	v.ProducerID, v.ProducerEpoch = t.producerID, t.epoch
	v.TimeoutMillis = int32(t.timeout / time.Millisecond)
	v.State = t.state
	v.LastUpdateTimestamp = t.updated.UnixMilli()
	v.StartTimestamp = -1
	if t.state != Empty && !t.started.IsZero() {
		v.StartTimestamp = t.started.UnixMilli()
	}
	for _, tp := range t.sortedPartitions() {
		vt := kmsg.NewTxnMetadataValueTopic()
		vt.Topic, vt.Partitions = tp.topic, tp.parts
		v.Topics = append(v.Topics, vt)
	}
	return Record{Key: k.AppendTo(nil), Value: v.AppendTo(nil)}
}

func (c *Coordinator) setPID(t *txn, pid int64) {
	if c.byPID[t.producerID] == t {
		delete(c.byPID, t.producerID)
	}
	t.producerID = pid
	c.byPID[pid] = t
}
