package broker

import (
	"path/filepath"
	"sort"
	"syscall"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeLogDirs: v1-4
//
// One log directory (the data dir) with the size of every requested
// partition (all, for a null topic list); v4 adds the file system's total
// and usable bytes.

func init() { register(35, 1, 4, handleDescribeLogDirs) }

func handleDescribeLogDirs(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.DescribeLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir, _ = filepath.Abs(b.cfg.DataDir)
	dir.TotalBytes, dir.UsableBytes = -1, -1
	var st syscall.Statfs_t
	if syscall.Statfs(b.cfg.DataDir, &st) == nil {
		dir.TotalBytes = int64(st.Blocks) * st.Bsize
		dir.UsableBytes = int64(st.Bavail) * st.Bsize
	}
	want := map[string]map[int32]bool{}
	for _, rt := range req.Topics {
		want[rt.Topic] = map[int32]bool{}
		for _, p := range rt.Partitions {
			want[rt.Topic][p] = true
		}
	}
	byTopic := map[string][]kmsg.DescribeLogDirsResponseDirTopicPartition{}
	for _, p := range b.allPartitions() {
		if req.Topics != nil && !want[p.t.name][p.index] {
			continue
		}
		dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		dp.Partition, dp.Size = p.index, p.log.Size()
		byTopic[p.t.name] = append(byTopic[p.t.name], dp)
	}
	names := make([]string, 0, len(byTopic))
	for n := range byTopic {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		dt := kmsg.NewDescribeLogDirsResponseDirTopic()
		dt.Topic = n
		dt.Partitions = byTopic[n]
		sort.Slice(dt.Partitions, func(i, j int) bool { return dt.Partitions[i].Partition < dt.Partitions[j].Partition })
		dir.Topics = append(dir.Topics, dt)
	}
	resp.Dirs = append(resp.Dirs, dir)
	return done(resp)
}
