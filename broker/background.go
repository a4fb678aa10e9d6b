package broker

import (
	"time"
)

// startBackground runs the broker's periodic work: following the metadata
// log, flush.ms/flush.messages, retention, compaction and checkpoints. Each
// loop stops when the broker closes.
func (b *Broker) startBackground() {
	watch, cancel := b.meta.Watch()
	b.loop(0, func() {}, func() {
		defer cancel()
		retry := time.NewTicker(5 * time.Second)
		defer retry.Stop()
		for {
			select {
			case <-b.closing:
				return
			case <-retry.C:
				if !b.incomplete.Load() {
					continue
				}
			case <-watch:
			}
			if err := b.reconcile(); err != nil {
				b.logger.Error("apply metadata", "err", err)
			}
		}
	})
	if b.replicated() {
		b.loop(b.cfg.ReplicaLagTimeMax/2, b.shrinkISRs, nil)
		b.loop(hwCheckpointInterval, b.writeHWCheckpoint, nil)
		b.loop(0, nil, b.awaitMetadata)
		b.loop(0, nil, b.runController)
	}
	b.loop(b.cfg.FlushSchedulerInterval, b.scheduleFlushes, nil)
	b.loop(b.cfg.RetentionCheckInterval, b.enforceRetention, nil)
	b.loop(b.cfg.CleanerBackoff, b.compactLogs, nil)
	b.loop(b.cfg.ProducerIDExpirationCheck, b.expireProducers, nil)
	b.txns.Start()
	b.loop(lazyFlushInterval, b.flushLazy, nil)
	b.loop(b.cfg.CheckpointInterval, func() {
		if err := b.writeCheckpoints(); err != nil {
			b.logger.Error("checkpoint", "err", err)
		}
	}, nil)
}

// loop runs fn every interval, or body once, in a goroutine tracked by wg.
func (b *Broker) loop(interval time.Duration, fn func(), body func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if body != nil {
			body()
			return
		}
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-b.closing:
				return
			case <-t.C:
				fn()
			}
		}
	}()
}

// scheduleFlushes honours the topic configs flush.messages and flush.ms.
func (b *Broker) scheduleFlushes() {
	now := time.Now().UnixMilli()
	for _, p := range b.allPartitions() {
		s := p.t.settings.Load()
		unsynced := p.log.UnsyncedRecords()
		if unsynced == 0 {
			p.lastFlush.Store(now)
			continue
		}
		if unsynced >= s.flushMessages || now-p.lastFlush.Load() >= s.flushMs {
			p.lastFlush.Store(now)
			b.flusher.Sync(p.log, p.log.EndOffset())
		}
	}
}

func (b *Broker) enforceRetention() {
	now := time.Now().UnixMilli()
	for _, p := range b.allPartitions() {
		n, err := p.log.EnforceRetention(now)
		if err != nil {
			b.logger.Error("retention", "topic", p.t.name, "partition", p.index, "err", err)
		} else if n > 0 {
			b.logger.Info("deleted segments by retention", "topic", p.t.name, "partition", p.index, "segments", n)
		}
	}
}

func (b *Broker) compactLogs() {
	now := time.Now().UnixMilli()
	for _, p := range b.allPartitions() {
		if !p.log.Config().Compact {
			continue
		}
		select {
		case <-b.closing:
			return
		default:
		}
		if _, err := p.log.CompactBelow(now, p.log.LastStableOffset()); err != nil {
			b.logger.Error("compaction", "topic", p.t.name, "partition", p.index, "err", err)
		}
	}
}

// expireProducers drops the idempotence state of producers silent for
// producer.id.expiration.ms, as Kafka does.
func (b *Broker) expireProducers() {
	now := time.Now().UnixMilli()
	for _, p := range b.allPartitions() {
		if n := p.log.ExpireProducers(now, b.cfg.ProducerIDExpiration.Milliseconds()); n > 0 {
			b.logger.Info("expired producer state", "topic", p.t.name, "partition", p.index, "producers", n)
		}
	}
}
