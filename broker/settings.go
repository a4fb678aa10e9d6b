package broker

import (
	"fmt"
	"strconv"
	"time"
)

// ApplySetting sets one broker-level config by its Kafka name. Settings the
// broker itself uses become Config fields; the topic defaults
// (log.retention.ms, message.max.bytes, ...) are validated like the topic
// configs they supply and kept in Settings.
func (c *Config) ApplySetting(name, value string) error {
	atoi := func() (int64, error) {
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", value)
		}
		return n, nil
	}
	ms := func(dst *time.Duration) error {
		n, err := atoi()
		if err == nil && n <= 0 {
			err = fmt.Errorf("must be positive")
		}
		*dst = time.Duration(n) * time.Millisecond
		return err
	}
	if ok, err := c.parseGroupSetting(name, value); ok {
		return err
	}
	switch name {
	case "auto.create.topics.enable":
		v, err := strconv.ParseBool(value)
		c.AutoCreateTopics = v
		return err
	case "num.partitions":
		n, err := atoi()
		if err == nil && (n < 1 || n > 1<<20) {
			err = fmt.Errorf("must be between 1 and %d", 1<<20)
		}
		c.NumPartitions = int32(n)
		return err
	case "socket.request.max.bytes":
		n, err := atoi()
		if err == nil && (n < 1024 || n > 1<<31-1) {
			err = fmt.Errorf("must be between 1024 and %d", 1<<31-1)
		}
		c.SocketRequestMaxBytes = int32(n)
		return err
	case "queued.max.request.bytes":
		n, err := atoi()
		if err == nil && n < 1<<20 {
			err = fmt.Errorf("must be at least %d", 1<<20)
		}
		c.QueuedMaxRequestBytes = n
		return err
	case "default.replication.factor":
		n, err := atoi()
		if err == nil && (n < 1 || n > 32767) {
			err = fmt.Errorf("must be between 1 and 32767")
		}
		c.DefaultReplicationFactor = int16(n)
		return err
	case "replica.lag.time.max.ms":
		return ms(&c.ReplicaLagTimeMax)
	case "auto.leader.rebalance.enable":
		v, err := strconv.ParseBool(value)
		c.DisableLeaderRebalance = !v
		return err
	case "leader.imbalance.check.interval.seconds":
		n, err := atoi()
		if err == nil && n <= 0 {
			err = fmt.Errorf("must be positive")
		}
		c.LeaderImbalanceCheckInterval = time.Duration(n) * time.Second
		return err
	case "connections.max.idle.ms":
		return ms(&c.ConnectionsMaxIdle)
	case "log.retention.check.interval.ms":
		return ms(&c.RetentionCheckInterval)
	case "log.cleaner.backoff.ms":
		return ms(&c.CleanerBackoff)
	case "log.flush.offset.checkpoint.interval.ms":
		return ms(&c.CheckpointInterval)
	case "log.flush.scheduler.interval.ms":
		return ms(&c.FlushSchedulerInterval)
	case "transaction.state.log.num.partitions":
		n, err := atoi()
		if err == nil && (n < 1 || n > 1<<20) {
			err = fmt.Errorf("must be between 1 and %d", 1<<20)
		}
		c.TxnTopicPartitions = int32(n)
		return err
	case "transaction.max.timeout.ms":
		return ms(&c.TxnMaxTimeout)
	case "transactional.id.expiration.ms":
		return ms(&c.TxnIDExpiration)
	case "transaction.abort.timed.out.transaction.cleanup.interval.ms":
		return ms(&c.TxnAbortCheckInterval)
	case "producer.id.expiration.ms":
		return ms(&c.ProducerIDExpiration)
	case "producer.id.expiration.check.interval.ms":
		return ms(&c.ProducerIDExpirationCheck)
	}
	for _, d := range topicConfigs {
		if d.brokerKey == name {
			if err := d.validate(value); err != nil {
				return err
			}
			if c.Settings == nil {
				c.Settings = map[string]string{}
			}
			c.Settings[name] = value
			return nil
		}
	}
	return fmt.Errorf("unknown broker config %q", name)
}
