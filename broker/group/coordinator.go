package group

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record is one __consumer_offsets record; a nil Value is a tombstone.
type Record struct {
	Key, Value []byte
}

// Log is where the coordinator writes its records: the broker appends them
// to the group's partition of __consumer_offsets and the returned channel
// reports when they are durable (or the error).
type Log interface {
	Append(group string, recs []Record) <-chan error
	// AppendTxn appends recs as a transactional batch of the producer.
	AppendTxn(group string, pid int64, epoch int16, recs []Record) <-chan error
}

// Config configures a Coordinator.
type Config struct {
	Log Log
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms: how long
	// the first rebalance of an empty group waits for more members.
	InitialRebalanceDelay time.Duration
	// MinSessionTimeout and MaxSessionTimeout bound the members' session
	// timeouts (group.min/max.session.timeout.ms).
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// MaxMetadataBytes is offset.metadata.max.bytes.
	MaxMetadataBytes int
	// Partitions returns the partition count of a topic, or -1 when the
	// topic does not exist; commits to unknown partitions are refused.
	Partitions func(topic string) int32
	// Rebalanced, when set, hears of each rebalance that ended with the
	// group Stable, with its duration (from PreparingRebalance on).
	Rebalanced func(time.Duration)
	Logger     *slog.Logger

	// KIP-848 groups: group.consumer.heartbeat.interval.ms,
	// group.consumer.session.timeout.ms and group.consumer.max.size.
	ConsumerHeartbeatInterval time.Duration
	ConsumerSessionTimeout    time.Duration
	ConsumerMaxSize           int
	// TopicsVersion changes whenever a topic is created, deleted or
	// grows; Topics lists every topic. KIP-848 groups resolve their
	// subscriptions with them.
	TopicsVersion func() uint64
	Topics        func() []TopicInfo
	// OffsetsRetention is offsets.retention.minutes: how long the offsets
	// of an Empty group are kept after it became Empty (see expire.go).
	// Default 7 days.
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval is offsets.retention.check.interval.ms:
	// how often expired offsets are looked for. Default 10 minutes.
	OffsetsRetentionCheckInterval time.Duration
	// MaxSize is group.max.size: the most members a classic group takes
	// (see maxsize.go). 0 means no limit, Kafka's Integer.MAX_VALUE.
	MaxSize int
}

// Coordinator holds every classic group of this broker.
type Coordinator struct {
	cfg    Config
	mu     sync.Mutex
	groups map[string]*group
	seq    uint64
	closed bool
	// closedErr answers requests once closed: COORDINATOR_NOT_AVAILABLE
	// after Close, NOT_COORDINATOR after Unload or from Refusing.
	closedErr *kerr.Error
	expiry    *time.Timer // the next offset expiry run, once Loaded
}

// New returns an empty coordinator; Load fills it from the log.
func New(cfg Config) *Coordinator {
	if cfg.MinSessionTimeout <= 0 {
		cfg.MinSessionTimeout = 6 * time.Second
	}
	if cfg.MaxSessionTimeout <= 0 {
		cfg.MaxSessionTimeout = 30 * time.Minute
	}
	if cfg.MaxMetadataBytes <= 0 {
		cfg.MaxMetadataBytes = 4096
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Rebalanced == nil {
		cfg.Rebalanced = func(time.Duration) {}
	}
	if cfg.ConsumerHeartbeatInterval <= 0 {
		cfg.ConsumerHeartbeatInterval = 5 * time.Second
	}
	if cfg.ConsumerSessionTimeout <= 0 {
		cfg.ConsumerSessionTimeout = 45 * time.Second
	}
	if cfg.ConsumerMaxSize <= 0 {
		cfg.ConsumerMaxSize = math.MaxInt32
	}
	if cfg.TopicsVersion == nil || cfg.Topics == nil {
		cfg.TopicsVersion = func() uint64 { return 0 }
		cfg.Topics = func() []TopicInfo { return nil }
	}
	if cfg.Partitions == nil {
		cfg.Partitions = func(string) int32 { return -1 }
	}
	if cfg.OffsetsRetention <= 0 {
		cfg.OffsetsRetention = 7 * 24 * time.Hour
	}
	if cfg.OffsetsRetentionCheckInterval <= 0 {
		cfg.OffsetsRetentionCheckInterval = 10 * time.Minute
	}
	return &Coordinator{cfg: cfg, groups: map[string]*group{}, closedErr: kerr.CoordinatorNotAvailable}
}

// Refusing returns a coordinator holding nothing that answers every
// request with err, as a closed one does: the broker hands it out for
// groups it does not coordinate (NOT_COORDINATOR) or not yet
// (COORDINATOR_LOAD_IN_PROGRESS).
func Refusing(err *kerr.Error) *Coordinator {
	c := New(Config{})
	c.closed, c.closedErr = true, err
	return c
}

// Close stops every timer; later requests get COORDINATOR_NOT_AVAILABLE.
func (c *Coordinator) Close() { c.close(kerr.CoordinatorNotAvailable) }

// Unload closes the coordinator of a partition this broker no longer
// leads: members waiting in JoinGroup or SyncGroup and later requests get
// NOT_COORDINATOR, which sends clients to the new coordinator.
func (c *Coordinator) Unload() { c.close(kerr.NotCoordinator) }

func (c *Coordinator) close(err *kerr.Error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed, c.closedErr = true, err
	if c.expiry != nil {
		c.expiry.Stop()
	}
	for _, g := range c.groups {
		g.token++
		if g.timer != nil {
			g.timer.Stop()
		}
		for _, t := range g.pending {
			t.Stop()
		}
		for _, m := range g.members {
			if m.join != nil {
				m.join <- joinError(m.id, err.Code)
				m.join = nil
			}
			if m.sync != nil {
				m.sync <- syncError(err.Code)
				m.sync = nil
			}
		}
	}
}

func newMemberID(clientID string) string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return clientID + "-" + h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Record keys and values in Kafka's __consumer_offsets layout.

func offsetKey(group, topic string, partition int32) []byte {
	k := kmsg.OffsetCommitKey{Version: 1, Group: group, Topic: topic, Partition: partition}
	return k.AppendTo(nil)
}

func offsetValue(o offset) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = 3
	v.Offset, v.LeaderEpoch, v.Metadata, v.CommitTimestamp = o.offset, o.leaderEpoch, o.metadata, o.timestamp
	if o.expireAt > 0 {
		// Only version 1 holds an expire timestamp, as Kafka writes it.
		v.Version, v.ExpireTimestamp = 1, o.expireAt
	}
	return v.AppendTo(nil)
}

func groupKey(group string) []byte {
	k := kmsg.GroupMetadataKey{Version: 2, Group: group}
	return k.AppendTo(nil)
}

// groupValue is the group's metadata as Kafka stores it after each
// rebalance (version 3: with static instance ids).
func (g *group) value(now time.Time) []byte {
	v := kmsg.NewGroupMetadataValue()
	v.Version = 3
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.protocol != "" {
		p := g.protocol
		v.Protocol = &p
	}
	if g.leader != "" {
		l := g.leader
		v.Leader = &l
	}
	v.CurrentStateTimestamp = now.UnixMilli()
	for _, m := range g.sortedMembers() {
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID, vm.InstanceID = m.id, m.instanceID
		vm.ClientID, vm.ClientHost = m.clientID, m.clientHost
		vm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout / time.Millisecond)
		vm.SessionTimeoutMillis = int32(m.sessionTimeout / time.Millisecond)
		vm.Subscription = m.metadata(g.protocol)
		vm.Assignment = m.assignment
		v.Members = append(v.Members, vm)
	}
	return v.AppendTo(nil)
}

// errBadRecord marks a __consumer_offsets record this coordinator cannot read.
var errBadRecord = errors.New("unreadable __consumer_offsets record")

// Load applies one record read back from __consumer_offsets, in log order.
// Records of unknown key versions are skipped, as Kafka skips them.
func (c *Coordinator) Load(key, value []byte) error {
	if len(key) < 2 {
		return errBadRecord
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	version := int16(key[0])<<8 | int16(key[1])
	switch version {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			return errBadRecord
		}
		g := c.groups[k.Group]
		if value == nil {
			if g != nil {
				delete(g.offsets[k.Topic], k.Partition)
				if len(g.offsets[k.Topic]) == 0 {
					delete(g.offsets, k.Topic)
				}
				c.forgetIfEmpty(g)
			}
			return nil
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(value); err != nil {
			return errBadRecord
		}
		if g == nil {
			g = newGroup(k.Group, now)
			c.groups[k.Group] = g
		}
		c.seq++
		g.setOffset(k.Topic, k.Partition, offset{offset: v.Offset, leaderEpoch: v.LeaderEpoch, metadata: v.Metadata, timestamp: v.CommitTimestamp, expireAt: loadedExpireAt(&v), seq: c.seq})
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return errBadRecord
		}
		if value == nil {
			if g := c.groups[k.Group]; g != nil {
				// The classic group is gone; its offsets have their own
				// tombstones (or live on in a KIP-848 group).
				g.members, g.static = map[string]*member{}, map[string]string{}
				g.generation, g.leader, g.protocol = 0, "", ""
				if g.cg == nil {
					g.protocolType = ""
				}
				g.setState(Empty, now)
				c.forgetIfEmpty(g)
			}
			return nil
		}
		var v kmsg.GroupMetadataValue
		if err := v.ReadFrom(value); err != nil {
			return errBadRecord
		}
		g := c.groups[k.Group]
		if g == nil {
			g = newGroup(k.Group, now)
			c.groups[k.Group] = g
		}
		g.members, g.static = map[string]*member{}, map[string]string{}
		g.protocolType, g.generation = v.ProtocolType, v.Generation
		g.protocol, g.leader = deref(v.Protocol), deref(v.Leader)
		for _, vm := range v.Members {
			g.joinOrder++
			m := &member{
				id: vm.MemberID, instanceID: vm.InstanceID, clientID: vm.ClientID, clientHost: vm.ClientHost,
				sessionTimeout:   time.Duration(vm.SessionTimeoutMillis) * time.Millisecond,
				rebalanceTimeout: time.Duration(vm.RebalanceTimeoutMillis) * time.Millisecond,
				protocols:        []kmsg.JoinGroupRequestProtocol{{Name: g.protocol, Metadata: vm.Subscription}},
				assignment:       vm.Assignment, order: g.joinOrder, lastSeen: now,
			}
			if m.rebalanceTimeout <= 0 {
				m.rebalanceTimeout = m.sessionTimeout
			}
			g.members[m.id] = m
			if m.instanceID != nil {
				g.static[*m.instanceID] = m.id
			}
		}
		if len(g.members) > 0 {
			g.setState(Stable, now)
		} else {
			g.setState(Empty, emptySince(&v))
		}
	case recConsumerGroup, recConsumerMember, recTargetMetadata, recTargetMember, recCurrentAssignmnt:
		return c.loadConsumer(version, key, value, now)
	}
	return nil
}

// forgetIfEmpty drops a group left with nothing by the log's tombstones.
func (c *Coordinator) forgetIfEmpty(g *group) {
	if len(g.offsets) == 0 && g.cg == nil && len(g.members) == 0 && g.generation == 0 && g.protocolType == "" && len(g.txnOffsets) == 0 {
		delete(c.groups, g.id)
	}
}

// Loaded starts the session timers of the members Load restored: they have
// a session timeout from now to show they are still alive. It forgets the
// groups whose offsets were all deleted, rebalances groups over
// group.max.size, and starts offset expiry.
func (c *Coordinator) Loaded() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for _, g := range c.groups {
		for _, m := range g.members {
			c.watchSession(g, m)
		}
		if g.cg != nil {
			c.loadedConsumer(g, now)
		}
		c.dropIfUnused(g)
		c.rebalanceIfOverCapacity(g)
	}
	c.scheduleExpiry()
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (g *group) setOffset(topic string, partition int32, o offset) {
	ps := g.offsets[topic]
	if ps == nil {
		ps = map[int32]offset{}
		g.offsets[topic] = ps
	}
	if cur, ok := ps[partition]; !ok || cur.seq < o.seq {
		ps[partition] = o
	}
}

// watchSession expires m once it has neither heartbeated, joined nor synced
// for its session timeout. A member waiting in JoinGroup or SyncGroup is
// alive by definition.
func (c *Coordinator) watchSession(g *group, m *member) {
	d := m.sessionTimeout - time.Since(m.lastSeen)
	time.AfterFunc(max(d, time.Millisecond), func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed || c.groups[g.id] != g || g.members[m.id] != m {
			return
		}
		if m.join != nil || m.sync != nil {
			m.lastSeen = time.Now()
		}
		if time.Since(m.lastSeen) < m.sessionTimeout {
			c.watchSession(g, m)
			return
		}
		c.cfg.Logger.Info("group member session expired", "group", g.id, "member", m.id)
		c.removeMember(g, m)
		c.memberGone(g)
	})
}

// persistGroup writes g's metadata; the channel reports durability.
func (c *Coordinator) persistGroup(g *group) <-chan error {
	return c.cfg.Log.Append(g.id, []Record{{Key: groupKey(g.id), Value: g.value(time.Now())}})
}

// dropIfUnused forgets a group that holds nothing worth keeping (a group
// made by a JoinGroup that failed validation).
func (c *Coordinator) dropIfUnused(g *group) {
	if g.state == Empty && len(g.members) == 0 && len(g.pending) == 0 && len(g.offsets) == 0 && g.generation == 0 && g.cg == nil && len(g.txnOffsets) == 0 {
		delete(c.groups, g.id)
	}
}
