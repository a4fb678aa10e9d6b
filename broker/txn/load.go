package txn

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// errBadRecord marks a __transaction_state record this coordinator cannot
// read.
var errBadRecord = errors.New("unreadable __transaction_state record")

// Load applies one record read back from __transaction_state, in log
// order.
func (c *Coordinator) Load(key, value []byte) error {
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(key); err != nil || k.Version != 0 {
		return errBadRecord
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if value == nil {
		if t := c.txns[k.TransactionalID]; t != nil {
			if c.byPID[t.producerID] == t {
				delete(c.byPID, t.producerID)
			}
			delete(c.txns, k.TransactionalID)
		}
		return nil
	}
	var v kmsg.TxnMetadataValue
	if err := v.ReadFrom(value); err != nil {
		return errBadRecord
	}
	t := c.txns[k.TransactionalID]
	if t == nil {
		t = &txn{id: k.TransactionalID, lastEpoch: -1} // not in the record: a lost answer's retry is fenced
		c.txns[t.id] = t
	}
	c.setPID(t, v.ProducerID)
	t.epoch, t.state = v.ProducerEpoch, v.State
	t.timeout = time.Duration(v.TimeoutMillis) * time.Millisecond
	t.updated = time.UnixMilli(v.LastUpdateTimestamp)
	t.started = time.Time{}
	if v.StartTimestamp >= 0 {
		t.started = time.UnixMilli(v.StartTimestamp)
	}
	t.partitions = map[string]map[int32]bool{}
	for _, vt := range v.Topics {
		for _, p := range vt.Partitions {
			t.add(vt.Topic, p)
		}
	}
	if t.state == CompleteCommit || t.state == CompleteAbort {
		t.lastOutcome = t.state
	}
	return nil
}

// Start begins the background work: transactions found half-ended in the
// log are finished, timed-out ones aborted, idle ids expired.
func (c *Coordinator) Start() {
	c.mu.Lock()
	c.started = true
	c.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		tick := time.NewTicker(c.cfg.CheckInterval)
		defer tick.Stop()
		for {
			c.check(time.Now())
			select {
			case <-c.stop:
				return
			case <-tick.C:
			}
		}
	}()
}

func (t *txn) add(topic string, p int32) bool {
	ps := t.partitions[topic]
	if ps == nil {
		ps = map[int32]bool{}
		t.partitions[topic] = ps
	}
	if ps[p] {
		return false
	}
	ps[p] = true
	return true
}

func (t *txn) has(topic string, p int32) bool { return t.partitions[topic][p] }

type topicParts struct {
	topic string
	parts []int32
}

func (t *txn) sortedPartitions() []topicParts {
	out := make([]topicParts, 0, len(t.partitions))
	for topic, ps := range t.partitions {
		tp := topicParts{topic: topic}
		for p := range ps {
			tp.parts = append(tp.parts, p)
		}
		slices.Sort(tp.parts)
		out = append(out, tp)
	}
	slices.SortFunc(out, func(a, b topicParts) int { return strings.Compare(a.topic, b.topic) })
	return out
}

// partitionMap copies t's partitions for Markers.
func (t *txn) partitionMap() map[string][]int32 {
	m := make(map[string][]int32, len(t.partitions))
	for _, tp := range t.sortedPartitions() {
		m[tp.topic] = tp.parts
	}
	return m
}
