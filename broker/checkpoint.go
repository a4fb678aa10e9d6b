package broker

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Kafka keeps per-partition offsets in small text files in the log dir:
//
//	0                  (version)
//	2                  (entries)
//	orders 0 1234      (topic partition offset)
//	orders 1 988
//
// recovery-point-offset-checkpoint holds each log's fsynced offset: on start
// only what lies past it is re-validated. log-start-offset-checkpoint holds
// log start offsets moved by DeleteRecords and retention.
// replication-offset-checkpoint holds high watermarks: a replica that
// restarts serves consumers from there until its leader (or its followers)
// tell it more, instead of exposing a tail that may never have been
// replicated.
const (
	recoveryCheckpointFile = "recovery-point-offset-checkpoint"
	startCheckpointFile    = "log-start-offset-checkpoint"
	hwCheckpointFile       = "replication-offset-checkpoint"
)

// hwCheckpointInterval is replica.high.watermark.checkpoint.interval.ms.
const hwCheckpointInterval = 5 * time.Second

// readCheckpoint returns offsets keyed by partition directory name
// ("topic-partition"). A missing file is empty; a malformed one is an error
// naming the line.
func readCheckpoint(path string) (map[string]int64, error) {
	out := map[string]int64{}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		if line <= 2 {
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			return nil, fmt.Errorf("%s line %d: want 'topic partition offset'", path, line)
		}
		off, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, line, err)
		}
		out[f[0]+"-"+f[1]] = off
	}
	return out, nil
}

func writeCheckpoint(path string, entries map[string]int64) error {
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "0\n%d\n", len(keys))
	for _, k := range keys {
		i := strings.LastIndexByte(k, '-')
		fmt.Fprintf(&buf, "%s %s %d\n", k[:i], k[i+1:], entries[k])
	}
	tmp := path + ".tmp"
	if err := writeFileSync(tmp, buf.Bytes()); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// writeCheckpoints records every partition's durable offset and log start.
func (b *Broker) writeCheckpoints() error {
	b.checkMu.Lock()
	defer b.checkMu.Unlock()
	rec, start := map[string]int64{}, map[string]int64{}
	for _, p := range b.allPartitions() {
		key := filepath.Base(p.log.Dir())
		rec[key] = p.log.DurableOffset()
		start[key] = p.log.StartOffset()
	}
	if err := writeCheckpoint(filepath.Join(b.cfg.DataDir, recoveryCheckpointFile), rec); err != nil {
		return fmt.Errorf("write recovery checkpoint: %w", err)
	}
	if err := writeCheckpoint(filepath.Join(b.cfg.DataDir, startCheckpointFile), start); err != nil {
		return fmt.Errorf("write log start checkpoint: %w", err)
	}
	return b.writeHWCheckpointLocked()
}

// writeHWCheckpoint records every partition's high watermark.
func (b *Broker) writeHWCheckpoint() {
	b.checkMu.Lock()
	defer b.checkMu.Unlock()
	if err := b.writeHWCheckpointLocked(); err != nil {
		b.logger.Error("checkpoint", "err", err)
	}
}

func (b *Broker) writeHWCheckpointLocked() error {
	hw := map[string]int64{}
	for _, p := range b.allPartitions() {
		hw[filepath.Base(p.log.Dir())] = p.highWatermark()
	}
	if err := writeCheckpoint(filepath.Join(b.cfg.DataDir, hwCheckpointFile), hw); err != nil {
		return fmt.Errorf("write high watermark checkpoint: %w", err)
	}
	return nil
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
