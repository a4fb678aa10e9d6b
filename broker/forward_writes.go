package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker/meta"
)

// Metadata writes a follower forwards to the controller: producer-id blocks
// (AllocateProducerIds) and the topics it creates itself, auto-created or
// internal (CreateTopics with the same configs). Each is first tried on the
// local store, which succeeds on the leader with no network hop; only
// meta.ErrNotController on a clustered node forwards.

// localApplyTimeout bounds the wait for a forwarded creation to reach this
// node's copy of the metadata log.
const localApplyTimeout = 5 * time.Second

// allocateProducerIDBlock reserves a block of producer ids for this broker.
func (b *Broker) allocateProducerIDBlock() (first, size int64, err error) {
	blk, err := b.meta.AllocateProducerIDs(producerIDBlockSize)
	if !notController(err) || b.ctl == nil {
		return blk.First, blk.Size, err
	}
	req := kmsg.NewPtrAllocateProducerIDsRequest()
	req.BrokerID = b.cfg.NodeID
	resp, err := b.ctl.send(context.Background(), req, func(r kmsg.Response) int16 {
		return r.(*kmsg.AllocateProducerIDsResponse).ErrorCode
	})
	if err != nil {
		return 0, 0, fmt.Errorf("forward producer id block: %w", err)
	}
	r := resp.(*kmsg.AllocateProducerIDsResponse)
	if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
		return 0, 0, fmt.Errorf("forward producer id block: controller answered: %w", err)
	}
	if r.ProducerIDStart < 0 || r.ProducerIDLen <= 0 {
		return 0, 0, fmt.Errorf("forward producer id block: controller answered an empty block [%d, +%d)", r.ProducerIDStart, r.ProducerIDLen)
	}
	b.logger.Info("producer id block from controller", "first", r.ProducerIDStart, "size", r.ProducerIDLen)
	return r.ProducerIDStart, int64(r.ProducerIDLen), nil
}

// createTopic creates one topic, forwarding it to the controller on a
// follower, and returns nil, an error wrapping meta.ErrTopicExists, or why it
// failed. A forwarded topic is in this node's metadata when it returns nil or
// ErrTopicExists.
func (b *Broker) createTopic(spec meta.TopicSpec) error {
	if spec.Brokers == nil {
		spec.Brokers = b.placementBrokers()
	}
	err := b.meta.CreateTopics([]meta.TopicSpec{spec})[0]
	if !notController(err) || b.ctl == nil {
		return err
	}
	err = b.forwardCreateTopic(spec)
	if err != nil && !errors.Is(err, meta.ErrTopicExists) {
		return err
	}
	if !b.awaitTopic(spec.Name, localApplyTimeout) {
		return fmt.Errorf("forwarded topic %s: %w: created, but not in the local metadata within %v", spec.Name, errControllerUnavailable, localApplyTimeout)
	}
	return err
}

// forwardCreateTopic sends CreateTopics for spec to the controller.
func (b *Broker) forwardCreateTopic(spec meta.TopicSpec) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(controllerTimeout / time.Millisecond)
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = spec.Name, spec.Partitions, spec.ReplicationFactor
	names := make([]string, 0, len(spec.Configs))
	for name := range spec.Configs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = name, kmsg.StringPtr(spec.Configs[name])
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := b.ctl.send(context.Background(), req, func(r kmsg.Response) int16 {
		if ts := r.(*kmsg.CreateTopicsResponse).Topics; len(ts) == 1 {
			return ts[0].ErrorCode
		}
		return 0
	})
	if err != nil {
		return fmt.Errorf("forward creation of topic %s: %w", spec.Name, err)
	}
	ts := resp.(*kmsg.CreateTopicsResponse).Topics
	if len(ts) != 1 {
		return fmt.Errorf("forward creation of topic %s: controller answered %d topics", spec.Name, len(ts))
	}
	switch code := ts[0].ErrorCode; {
	case code == 0:
		b.logger.Info("topic created through controller", "topic", spec.Name, "partitions", spec.Partitions)
		return nil
	case code == kerr.TopicAlreadyExists.Code:
		return fmt.Errorf("forward creation of topic %s: %w", spec.Name, meta.ErrTopicExists)
	default:
		msg := ""
		if ts[0].ErrorMessage != nil {
			msg = ": " + *ts[0].ErrorMessage
		}
		return fmt.Errorf("forward creation of topic %s: controller answered %w%s", spec.Name, kerr.ErrorForCode(code), msg)
	}
}

// awaitTopic waits until this node's metadata has the topic.
func (b *Broker) awaitTopic(name string, d time.Duration) bool {
	ch, stop := b.meta.Watch()
	defer stop()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		if _, ok := b.meta.Topic(name); ok {
			return true
		}
		select {
		case <-ch:
		case <-timer.C:
			return false
		case <-b.closing:
			return false
		}
	}
}
