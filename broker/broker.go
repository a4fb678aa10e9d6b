// Package broker is Sluice's Kafka-protocol broker: a TCP server answering
// Kafka requests (one file per API, handlers built on franz-go's kmsg) over
// partitions stored by package commitlog, with topic metadata applied
// through the raft state machine of package meta.
package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-io/sluice/broker/cluster"
	"github.com/sluice-io/sluice/broker/commitlog"
	"github.com/sluice-io/sluice/broker/meta"
	"github.com/sluice-io/sluice/broker/txn"
)

// Config is the broker's configuration; zero values take Kafka's defaults.
type Config struct {
	DataDir        string // partition directories, checkpoints and meta/
	KafkaAddr      string // listener, e.g. 127.0.0.1:9092
	AdvertisedAddr string // host:port clients are told to use; defaults to the listener's
	// InternalAddr is the host:port other nodes use for this node's Kafka
	// listener (replication, forwarded writes); empty means AdvertisedAddr.
	InternalAddr string
	RaftAddr     string // metadata quorum transport; "" runs raft in memory (tests)
	NodeID       int32

	// Cluster membership (see cluster.go). An empty GossipAddr is a
	// standalone node: no gossip, a single-voter quorum, as before clustering.
	GossipAddr      string   // memberlist listener, e.g. 127.0.0.1:7946
	Join            []string // gossip addresses of existing nodes
	BootstrapExpect int      // controller-eligible nodes a fresh cluster waits for (1)
	Rack            string   // broker.rack
	Roles           []string // this process's roles; "broker" makes it controller-eligible
	// GossipProbeInterval is gossip's failure-detection probe interval
	// (400 ms when 0); failover starts about three intervals after a
	// node dies.
	GossipProbeInterval time.Duration

	// Replication (replica.go, controller.go).
	DefaultReplicationFactor int16         // default.replication.factor (1)
	ReplicaLagTimeMax        time.Duration // replica.lag.time.max.ms (30 s)
	// auto.leader.rebalance.enable (on unless DisableLeaderRebalance)
	// and leader.imbalance.check.interval.seconds (300 s).
	DisableLeaderRebalance       bool
	LeaderImbalanceCheckInterval time.Duration

	AutoCreateTopics      bool          // auto.create.topics.enable
	NumPartitions         int32         // num.partitions
	SocketRequestMaxBytes int32         // socket.request.max.bytes
	QueuedMaxRequestBytes int64         // queued.max.request.bytes: request bodies held at once, all connections
	ConnectionsMaxIdle    time.Duration // connections.max.idle.ms: idle client connections are closed

	// Group coordinator.
	OffsetsTopicPartitions int32 // offsets.topic.num.partitions of __consumer_offsets (50)
	// group.initial.rebalance.delay.ms: how long the first rebalance of an
	// empty group waits for more members. 0 takes Kafka's 3 s; negative
	// means no delay (the setting's 0).
	GroupInitialRebalanceDelay time.Duration
	GroupMinSessionTimeout     time.Duration // group.min.session.timeout.ms (6 s)
	GroupMaxSessionTimeout     time.Duration // group.max.session.timeout.ms (30 min)
	// KIP-848 groups: group.consumer.heartbeat.interval.ms (5 s),
	// group.consumer.session.timeout.ms (45 s), group.consumer.max.size.
	ConsumerGroupHeartbeatInterval time.Duration
	ConsumerGroupSessionTimeout    time.Duration
	ConsumerGroupMaxSize           int
	GroupMaxSize                   int           // group.max.size: members per classic group (0: no limit)
	OffsetsRetention               time.Duration // offsets.retention.minutes (7 days)
	// offsets.retention.check.interval.ms: how often expired offsets are
	// removed (10 min).
	OffsetsRetentionCheckInterval time.Duration

	// Idempotent producers.
	// Transaction coordinator.
	TxnTopicPartitions    int32         // transaction.state.log.num.partitions of __transaction_state (50)
	TxnMaxTimeout         time.Duration // transaction.max.timeout.ms (15 min)
	TxnIDExpiration       time.Duration // transactional.id.expiration.ms (7 days)
	TxnAbortCheckInterval time.Duration // transaction.abort.timed.out.transaction.cleanup.interval.ms (10 s)

	ProducerIDExpiration      time.Duration // producer.id.expiration.ms: state of silent producers is dropped (1 day)
	ProducerIDExpirationCheck time.Duration // producer.id.expiration.check.interval.ms (10 min)

	// Static broker configs (log.retention.ms, message.max.bytes, ...) that
	// supply topic defaults and appear in DescribeConfigs for the broker.
	Settings map[string]string

	// Background work intervals.
	RetentionCheckInterval time.Duration // log.retention.check.interval.ms
	CleanerBackoff         time.Duration // log.cleaner.backoff.ms
	CheckpointInterval     time.Duration // log.flush.offset.checkpoint.interval.ms
	FlushSchedulerInterval time.Duration // how often flush.ms/flush.messages are checked
	Logger                 *slog.Logger
	Registerer             prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.NumPartitions <= 0 {
		c.NumPartitions = 1
	}
	if c.SocketRequestMaxBytes <= 0 {
		c.SocketRequestMaxBytes = 100 << 20
	}
	if c.QueuedMaxRequestBytes <= 0 {
		c.QueuedMaxRequestBytes = 512 << 20
	}
	c.QueuedMaxRequestBytes = max(c.QueuedMaxRequestBytes, int64(c.SocketRequestMaxBytes))
	if c.DefaultReplicationFactor <= 0 {
		c.DefaultReplicationFactor = 1
	}
	if c.ReplicaLagTimeMax <= 0 {
		c.ReplicaLagTimeMax = 30 * time.Second
	}
	if c.LeaderImbalanceCheckInterval <= 0 {
		c.LeaderImbalanceCheckInterval = 300 * time.Second
	}
	if c.OffsetsTopicPartitions <= 0 {
		c.OffsetsTopicPartitions = 50
	}
	if c.GroupInitialRebalanceDelay == 0 {
		c.GroupInitialRebalanceDelay = 3 * time.Second
	}
	if c.GroupMinSessionTimeout <= 0 {
		c.GroupMinSessionTimeout = 6 * time.Second
	}
	if c.GroupMaxSessionTimeout <= 0 {
		c.GroupMaxSessionTimeout = 30 * time.Minute
	}
	if c.TxnTopicPartitions <= 0 {
		c.TxnTopicPartitions = 50
	}
	if c.ProducerIDExpiration <= 0 {
		c.ProducerIDExpiration = 24 * time.Hour
	}
	if c.ProducerIDExpirationCheck <= 0 {
		c.ProducerIDExpirationCheck = 10 * time.Minute
	}
	if c.ConnectionsMaxIdle <= 0 {
		c.ConnectionsMaxIdle = 10 * time.Minute
	}
	if c.RetentionCheckInterval <= 0 {
		c.RetentionCheckInterval = 5 * time.Minute
	}
	if c.CleanerBackoff <= 0 {
		c.CleanerBackoff = 15 * time.Second
	}
	if c.CheckpointInterval <= 0 {
		c.CheckpointInterval = time.Minute
	}
	if c.FlushSchedulerInterval <= 0 {
		c.FlushSchedulerInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Settings == nil {
		c.Settings = map[string]string{}
	}
}

// Broker is one running broker node.
type Broker struct {
	cfg     Config
	logger  *slog.Logger
	meta    *meta.Store
	flusher *commitlog.Flusher
	metrics *metrics
	budget  *byteBudget
	groups  *groupCoordinators // one per led __consumer_offsets partition (group_coordinators.go)
	pids    producerIDs

	offsetsCT coordinatorTopic // __consumer_offsets
	txnCT     coordinatorTopic // __transaction_state
	txns      *txn.Coordinator
	lazy      lazyFlusher // coordinator writes answered before their fsync

	fetchers fetchers     // replica fetchers, by leader
	peers    *peerClients // clients of other brokers (KIP-890 verification)

	gossip *cluster.Gossip // nil on a standalone node
	quorum *cluster.Quorum
	ctl    *controllerClient     // forwards metadata writes to the leader; nil standalone
	fatal  atomic.Pointer[error] // why the cluster made this node stop

	draining atomic.Bool // controlled shutdown under way
	caughtUp atomic.Bool // the metadata caught up with the quorum since start
	leaders  atomic.Pointer[leaderSet]

	ln        net.Listener
	advHost   string
	advPort   int32
	closing   chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
	connMu    sync.Mutex
	conns     map[net.Conn]struct{}

	mu         sync.RWMutex
	topics     map[string]*topic
	reconcMu   sync.Mutex
	checkMu    sync.Mutex
	incomplete atomic.Bool      // a partition failed to open; reconcile again
	recovered  map[string]int64 // recovery points read at start, by partition dir
	started    map[string]int64 // log start offsets read at start
	hwMarks    map[string]int64 // high watermarks read at start
}

// New opens the data directory, the metadata store and every partition, and
// binds the Kafka listener. Serve starts accepting connections.
func New(cfg Config) (*Broker, error) {
	cfg.setDefaults()
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	b := &Broker{
		cfg:     cfg,
		logger:  cfg.Logger,
		flusher: commitlog.NewFlusher(),
		closing: make(chan struct{}),
		topics:  map[string]*topic{},
		conns:   map[net.Conn]struct{}{},
		budget:  newByteBudget(cfg.QueuedMaxRequestBytes),
	}
	b.fetchers.b = b
	b.peers = newPeerClients(fmt.Sprintf("sluice-broker-%d", cfg.NodeID))
	b.offsetsCT = coordinatorTopic{name: offsetsTopic, partitions: func() int32 { return cfg.OffsetsTopicPartitions }}
	b.txnCT = coordinatorTopic{name: txnTopic, partitions: func() int32 { return cfg.TxnTopicPartitions }}
	b.metrics = newMetrics(b, cfg.Registerer)
	var err error
	b.recovered, err = readCheckpoint(filepath.Join(cfg.DataDir, recoveryCheckpointFile))
	if err != nil {
		return nil, err
	}
	b.started, err = readCheckpoint(filepath.Join(cfg.DataDir, startCheckpointFile))
	if err != nil {
		return nil, err
	}
	b.hwMarks, err = readCheckpoint(filepath.Join(cfg.DataDir, hwCheckpointFile))
	if err != nil {
		return nil, err
	}
	b.meta, err = meta.Open(meta.Config{
		Dir:       filepath.Join(cfg.DataDir, "meta"),
		NodeID:    cfg.NodeID,
		RaftAddr:  cfg.RaftAddr,
		Logger:    cfg.Logger,
		Clustered: cfg.clustered(),
	})
	if err != nil {
		b.flusher.Close()
		return nil, fmt.Errorf("open metadata: %w", err)
	}
	b.pids.allocBlock = b.allocateProducerIDBlock
	if err := b.reconcile(); err != nil {
		// One damaged partition must not keep the others offline: it stays
		// unavailable, and the background loop keeps retrying it.
		b.logger.Error("some partitions could not be opened", "err", err)
	}
	if err := b.newGroupCoordinator(); err != nil {
		b.closeLogs()
		b.meta.Close()
		b.flusher.Close()
		return nil, fmt.Errorf("load consumer groups: %w", err)
	}
	if err := b.newTxnCoordinator(); err != nil {
		b.groups.Close()
		b.closeLogs()
		b.meta.Close()
		b.flusher.Close()
		return nil, fmt.Errorf("load transactions: %w", err)
	}
	b.ln, err = net.Listen("tcp", cfg.KafkaAddr)
	if err != nil {
		b.closeLogs()
		b.meta.Close()
		b.flusher.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.KafkaAddr, err)
	}
	adv := cfg.AdvertisedAddr
	if adv == "" {
		adv = b.ln.Addr().String()
	}
	host, port, err := net.SplitHostPort(adv)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("advertised address %q: %w", adv, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("advertised port %q: %w", port, err)
	}
	b.advHost, b.advPort = host, int32(p)
	if err := b.startCluster(); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Addr is the bound Kafka listener address.
func (b *Broker) Addr() string { return b.ln.Addr().String() }

// Serve accepts connections until Close; it also runs the background work
// (metadata watch, retention, compaction, flush scheduling, checkpoints).
func (b *Broker) Serve() error {
	b.startBackground()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			if fe := b.fatal.Load(); fe != nil {
				return *fe
			}
			select {
			case <-b.closing:
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		b.wg.Add(1)
		b.trackConn(c, true)
		go func() {
			defer b.wg.Done()
			defer b.trackConn(c, false)
			b.serveConn(c)
		}()
	}
}

// Close stops accepting, closes client connections' work, flushes every log,
// writes checkpoints and closes the metadata store. It is a clean shutdown:
// the next start needs no recovery.
func (b *Broker) Close() error {
	var err error
	b.closeOnce.Do(func() {
		b.leaveCluster()
		close(b.closing)
		b.budget.wake()
		if b.ln != nil {
			b.ln.Close()
		}
		b.closeConns()
		b.groups.Close()
		b.txns.Close() // waits for markers being written
		b.fetchers.close()
		b.peers.close()
		b.wg.Wait()
		b.flusher.Close()
		err = b.closeLogs()
		if merr := b.meta.Close(); merr != nil && err == nil {
			err = merr
		}
	})
	return err
}

// isClosing reports a broker shutting down.
func (b *Broker) isClosing() bool {
	select {
	case <-b.closing:
		return true
	default:
		return false
	}
}

// defaultRF is the replication factor of topics created without one:
// default.replication.factor, bounded by the brokers there are.
func (b *Broker) defaultRF() int16 {
	return int16(min(int(b.cfg.DefaultReplicationFactor), max(len(b.placementBrokers()), 1)))
}

// closeConns closes every client connection so their loops end.
func (b *Broker) closeConns() {
	b.connMu.Lock()
	defer b.connMu.Unlock()
	for c := range b.conns {
		c.Close()
	}
}

func (b *Broker) trackConn(c net.Conn, add bool) {
	b.connMu.Lock()
	defer b.connMu.Unlock()
	if add {
		select {
		case <-b.closing:
			c.Close() // accepted while closing: its loops end at once
		default:
		}
		b.conns[c] = struct{}{}
	} else {
		delete(b.conns, c)
	}
}
