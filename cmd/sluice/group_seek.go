package main

// sluice group seek, delete and offset-delete.

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// ---- seek ----

// seekTarget is the parsed --to value.
type seekTarget struct {
	kind   string // start, end, timestamp or offset
	millis int64  // for timestamp
	offset int64  // for offset
}

func parseSeekTarget(s string) (seekTarget, error) {
	switch s {
	case "start", "beginning", "earliest":
		return seekTarget{kind: "start"}, nil
	case "end", "latest":
		return seekTarget{kind: "end"}, nil
	}
	if ms, ok := strings.CutPrefix(s, "@"); ok {
		n, err := strconv.ParseInt(ms, 10, 64)
		if err != nil || n < 0 {
			return seekTarget{}, fmt.Errorf("--to %q: want @ followed by a Unix time in milliseconds", s)
		}
		return seekTarget{kind: "timestamp", millis: n}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return seekTarget{}, fmt.Errorf("--to %q: want start, end, @timestamp_ms or a non-negative offset", s)
	}
	return seekTarget{kind: "offset", offset: n}, nil
}

type seekResult struct {
	Topic      string `json:"topic"`
	Partition  int32  `json:"partition"`
	PrevOffset int64  `json:"previous_offset"` // -1 when nothing was committed
	NewOffset  int64  `json:"new_offset"`
	Error      string `json:"error,omitempty"`
}

func groupSeekCmd(g *globals) *cobra.Command {
	var (
		to     string
		topics []string
	)
	cmd := &cobra.Command{
		Use:   "seek NAME --to start|end|@timestamp_ms|OFFSET",
		Short: "Reset a group's committed offsets",
		Long: "Commit new offsets for an inactive group: for every partition of the topics\n" +
			"the group has committed offsets for, or of the topics given with --topics.\n" +
			"--to start and end use the log start offset and high watermark; @MS uses the\n" +
			"first offset whose timestamp is at or after MS (the end if there is none);\n" +
			"a number commits that exact offset. The group must have no active members.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := g.jsonOutput()
			if err != nil {
				return err
			}
			target, err := parseSeekTarget(to)
			if err != nil {
				return err
			}
			group := args[0]
			adm, ctx, done, err := g.newAdmin(cmd)
			if err != nil {
				return err
			}
			defer done()

			// Refuse while members are active, as Kafka's
			// kafka-consumer-groups --reset-offsets does: their commits
			// would overwrite ours, and the broker rejects commits from
			// non-members of a non-empty group anyway.
			described, err := adm.DescribeGroups(ctx, group)
			if err != nil {
				return fmt.Errorf("describe group %q: %w", group, err)
			}
			dg, ok := described[group]
			if !ok {
				return fmt.Errorf("describe group %q: missing from the broker's response", group)
			}
			if dg.Err != nil {
				return fmt.Errorf("describe group %q: %s", group, errText(dg.Err, dg.ErrMessage))
			}
			if len(dg.Members) > 0 || (dg.State != "Empty" && dg.State != "Dead" && dg.State != "") {
				return fmt.Errorf("group %q has %d active members (state %s); stop its consumers before seeking", group, len(dg.Members), dg.State)
			}

			committed, err := adm.FetchOffsets(ctx, group)
			if err != nil {
				return fmt.Errorf("fetch offsets of group %q: %w", group, err)
			}
			ts := uniqueNames(topics)
			if len(ts) == 0 {
				ts = committed.Partitions().Topics()
				sort.Strings(ts)
			}
			if len(ts) == 0 {
				return fmt.Errorf("group %q has no committed offsets; name the topics to seek with --topics", group)
			}

			tds, err := adm.ListTopics(ctx, ts...)
			if err != nil {
				return fmt.Errorf("list topics: %w", err)
			}
			for _, t := range ts {
				td, ok := tds[t]
				if !ok {
					return fmt.Errorf("topic %q: missing from the broker's metadata response", t)
				}
				if td.Err != nil {
					return fmt.Errorf("topic %q: %w", t, td.Err)
				}
			}

			var listed kadm.ListedOffsets
			switch target.kind {
			case "start":
				listed, err = adm.ListStartOffsets(ctx, ts...)
			case "end":
				listed, err = adm.ListEndOffsets(ctx, ts...)
			case "timestamp":
				listed, err = adm.ListOffsetsAfterMilli(ctx, target.millis, ts...)
			}
			if err != nil {
				return fmt.Errorf("list offsets: %w", err)
			}

			var results []seekResult
			offsets := make(kadm.Offsets)
			for _, t := range ts {
				for _, p := range tds[t].Partitions.Sorted() {
					r := seekResult{Topic: t, Partition: p.Partition, PrevOffset: -1, NewOffset: -1}
					if c, ok := committed.Lookup(t, p.Partition); ok && c.Err == nil {
						r.PrevOffset = c.At
					}
					if target.kind == "offset" {
						r.NewOffset = target.offset
					} else {
						lo, ok := listed.Lookup(t, p.Partition)
						switch {
						case !ok:
							r.Error = "missing from the list offsets response"
						case lo.Err != nil:
							r.Error = "list offsets: " + lo.Err.Error()
						default:
							r.NewOffset = lo.Offset
						}
					}
					if r.Error == "" {
						if offsets[t] == nil {
							offsets[t] = make(map[int32]kadm.Offset)
						}
						offsets[t][p.Partition] = kadm.Offset{Topic: t, Partition: p.Partition, At: r.NewOffset, LeaderEpoch: -1}
					}
					results = append(results, r)
				}
			}
			if len(offsets) > 0 {
				resps, err := adm.CommitOffsets(ctx, group, offsets)
				if err != nil {
					return fmt.Errorf("commit offsets: %w", err)
				}
				for i, r := range results {
					if r.Error != "" {
						continue
					}
					cr, ok := resps.Lookup(r.Topic, r.Partition)
					switch {
					case !ok:
						results[i].Error = "missing from the commit response"
					case cr.Err != nil:
						results[i].Error = cr.Err.Error()
					}
				}
			}
			return printSeekResults(cmd, asJSON, results)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "where to seek: start, end, @timestamp_ms or an offset")
	cmd.Flags().StringSliceVar(&topics, "topics", nil, "topics to seek (default: the topics the group has committed offsets for)")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func printSeekResults(cmd *cobra.Command, asJSON bool, rs []seekResult) error {
	w := cmd.OutOrStdout()
	if rs == nil {
		rs = []seekResult{}
	}
	if asJSON {
		if err := writeJSON(w, rs); err != nil {
			return err
		}
	} else {
		tw := newTable(w, "topic", "partition", "previous-offset", "new-offset", "status")
		for _, r := range rs {
			status := "OK"
			if r.Error != "" {
				status = r.Error
			}
			tableRow(tw, r.Topic, r.Partition, offsetText(r.PrevOffset), offsetText(r.NewOffset), status)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	failed := 0
	for _, r := range rs {
		if r.Error != "" {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("seek failed for %d of %d partitions", failed, len(rs))
	}
	return nil
}

// ---- delete ----

type groupStatus struct {
	Group string `json:"group"`
	Error string `json:"error,omitempty"`
}

func groupDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME...",
		Aliases: []string{"rm"},
		Short:   "Delete groups (they must have no active members)",
		Args:    cobra.MinimumNArgs(1),
		RunE: g.adminRunE(func(ctx context.Context, cmd *cobra.Command, args []string, adm *kadm.Client, asJSON bool) error {
			names := uniqueNames(args)
			resps, err := adm.DeleteGroups(ctx, names...)
			if err != nil && len(resps) == 0 {
				return fmt.Errorf("delete groups: %w", err)
			}
			out := make([]groupStatus, 0, len(names))
			failed := 0
			for _, n := range names {
				s := groupStatus{Group: n}
				r, ok := resps[n]
				switch {
				case !ok:
					s.Error = "missing from the broker's response"
					if err != nil {
						s.Error = err.Error()
					}
				case r.Err != nil:
					s.Error = errText(r.Err, r.ErrMessage)
				}
				if s.Error != "" {
					failed++
				}
				out = append(out, s)
			}
			w := cmd.OutOrStdout()
			if asJSON {
				if err := writeJSON(w, out); err != nil {
					return err
				}
			} else {
				tw := newTable(w, "group", "status")
				for _, s := range out {
					tableRow(tw, s.Group, orOK(s.Error))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			if failed > 0 {
				return fmt.Errorf("delete failed for %d of %d groups", failed, len(names))
			}
			return nil
		}),
	}
}

func orOK(errStr string) string {
	if errStr == "" {
		return "OK"
	}
	return errStr
}

// ---- offset-delete ----

type partitionStatus struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Error     string `json:"error,omitempty"`
}

func groupOffsetDeleteCmd(g *globals) *cobra.Command {
	var (
		topic      string
		partitions []int32
	)
	cmd := &cobra.Command{
		Use:   "offset-delete NAME --topic T [-p PARTITIONS]",
		Short: "Delete a group's committed offsets for a topic",
		Long: "Delete a group's committed offsets for one topic: the partitions given with\n" +
			"-p, or by default every partition the group has committed to. The broker\n" +
			"refuses (GROUP_SUBSCRIBED_TO_TOPIC) while active members consume the topic.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := g.jsonOutput()
			if err != nil {
				return err
			}
			if topic == "" {
				return fmt.Errorf("--topic is required")
			}
			group := args[0]
			adm, ctx, done, err := g.newAdmin(cmd)
			if err != nil {
				return err
			}
			defer done()
			ps := partitions
			if len(ps) == 0 {
				committed, err := adm.FetchOffsets(ctx, group)
				if err != nil {
					return fmt.Errorf("fetch offsets of group %q: %w", group, err)
				}
				for p := range committed[topic] {
					ps = append(ps, p)
				}
				if len(ps) == 0 {
					return fmt.Errorf("group %q has no committed offsets for topic %q", group, topic)
				}
			}
			ps = uniqueInt32s(ps)
			set := make(kadm.TopicsSet)
			set.Add(topic, ps...)
			resps, err := adm.DeleteOffsets(ctx, group, set)
			if err != nil {
				return fmt.Errorf("delete offsets of group %q: %w", group, err)
			}
			out := make([]partitionStatus, 0, len(ps))
			failed := 0
			for _, p := range ps {
				s := partitionStatus{Topic: topic, Partition: p}
				perr, ok := resps.Lookup(topic, p)
				switch {
				case !ok:
					s.Error = "missing from the broker's response"
				case perr != nil:
					s.Error = perr.Error()
				}
				if s.Error != "" {
					failed++
				}
				out = append(out, s)
			}
			w := cmd.OutOrStdout()
			if asJSON {
				if err := writeJSON(w, out); err != nil {
					return err
				}
			} else {
				tw := newTable(w, "topic", "partition", "status")
				for _, s := range out {
					tableRow(tw, s.Topic, s.Partition, orOK(s.Error))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			if failed > 0 {
				return fmt.Errorf("offset-delete failed for %d of %d partitions", failed, len(ps))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&topic, "topic", "t", "", "topic whose offsets to delete (required)")
	cmd.Flags().Int32SliceVarP(&partitions, "partitions", "p", nil, "partitions to delete (default: all committed)")
	return cmd
}

// uniqueInt32s returns the distinct values sorted ascending.
func uniqueInt32s(is []int32) []int32 {
	seen := make(map[int32]bool, len(is))
	var out []int32
	for _, i := range is {
		if !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
