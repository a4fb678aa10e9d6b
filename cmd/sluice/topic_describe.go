package main

// sluice topic describe: summary, non-default configs and per-partition
// leader, replicas, ISR, leader epoch and log start / high watermark offsets.

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type topicDescription struct {
	Name       string            `json:"name"`
	ID         string            `json:"id,omitempty"`
	Internal   bool              `json:"internal"`
	Partitions []partitionDetail `json:"partitions"`
	Configs    []configEntry     `json:"configs"`
	Error      string            `json:"error,omitempty"`
}

type partitionDetail struct {
	Partition      int32   `json:"partition"`
	Leader         int32   `json:"leader"`
	LeaderEpoch    int32   `json:"leader_epoch"`
	Replicas       []int32 `json:"replicas"`
	ISR            []int32 `json:"isr"`
	LogStartOffset int64   `json:"log_start_offset"`
	HighWatermark  int64   `json:"high_watermark"`
	Error          string  `json:"error,omitempty"`
}

type configEntry struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	Source    string `json:"source"`
	Sensitive bool   `json:"sensitive,omitempty"`
}

func topicDescribeCmd(g *globals) *cobra.Command {
	var allConfigs bool
	cmd := &cobra.Command{
		Use:     "describe NAME...",
		Aliases: []string{"info"},
		Short:   "Describe topics: partitions, offsets and non-default configs",
		Long: "Describe topics. With --format json the output is always a JSON array,\n" +
			"one object per topic named, in the order given.",
		Args: cobra.MinimumNArgs(1),
		RunE: g.adminRunE(func(ctx context.Context, cmd *cobra.Command, args []string, adm *kadm.Client, asJSON bool) error {
			topics := uniqueNames(args)
			tds, err := adm.ListTopics(ctx, topics...)
			if err != nil {
				return fmt.Errorf("describe topics: %w", err)
			}
			var found []string
			for _, t := range topics {
				if td, ok := tds[t]; ok && td.Err == nil {
					found = append(found, t)
				}
			}
			var starts, ends kadm.ListedOffsets
			var cfgs kadm.ResourceConfigs
			if len(found) > 0 {
				// These may return shard errors alongside partial
				// results; what is missing shows as -1 below.
				starts, _ = adm.ListStartOffsets(ctx, found...)
				ends, _ = adm.ListEndOffsets(ctx, found...)
				cfgs, _ = adm.DescribeTopicConfigs(ctx, found...)
			}
			out := make([]topicDescription, 0, len(topics))
			failed := 0
			for _, t := range topics {
				d := describeOne(t, tds, starts, ends, cfgs, allConfigs)
				if d.Error != "" {
					failed++
				}
				out = append(out, d)
			}
			if asJSON {
				err = writeJSON(cmd.OutOrStdout(), out)
			} else {
				err = printDescriptions(cmd.OutOrStdout(), out)
			}
			if err != nil {
				return err
			}
			if failed > 0 {
				return fmt.Errorf("describe failed for %d of %d topics", failed, len(topics))
			}
			return nil
		}),
	}
	cmd.Flags().BoolVarP(&allConfigs, "all-configs", "a", false, "print every config, including defaults")
	return cmd
}

func describeOne(t string, tds kadm.TopicDetails, starts, ends kadm.ListedOffsets, cfgs kadm.ResourceConfigs, all bool) topicDescription {
	d := topicDescription{Name: t, Partitions: []partitionDetail{}, Configs: []configEntry{}}
	td, ok := tds[t]
	switch {
	case !ok:
		d.Error = "missing from the broker's metadata response"
		return d
	case td.Err != nil:
		d.Error = td.Err.Error()
		return d
	}
	if td.ID != (kadm.TopicID{}) {
		d.ID = td.ID.String()
	}
	d.Internal = td.IsInternal
	for _, p := range td.Partitions.Sorted() {
		pd := partitionDetail{
			Partition:      p.Partition,
			Leader:         p.Leader,
			LeaderEpoch:    p.LeaderEpoch,
			Replicas:       orEmpty(p.Replicas),
			ISR:            orEmpty(p.ISR),
			LogStartOffset: -1,
			HighWatermark:  -1,
			Error:          errText(p.Err, ""),
		}
		if o, ok := starts.Lookup(t, p.Partition); ok && o.Err == nil {
			pd.LogStartOffset = o.Offset
		}
		if o, ok := ends.Lookup(t, p.Partition); ok && o.Err == nil {
			pd.HighWatermark = o.Offset
		}
		d.Partitions = append(d.Partitions, pd)
	}
	rc, err := cfgs.On(t, nil)
	if err == nil && rc.Err != nil {
		d.Error = "describe configs: " + errText(rc.Err, rc.ErrMessage)
	}
	for _, c := range rc.Configs {
		if !all && (c.Source == kmsg.ConfigSourceDefaultConfig || c.Source == kmsg.ConfigSourceUnknown) {
			continue
		}
		d.Configs = append(d.Configs, configEntry{Name: c.Key, Value: c.MaybeValue(), Source: c.Source.String(), Sensitive: c.Sensitive})
	}
	sort.Slice(d.Configs, func(i, j int) bool { return d.Configs[i].Name < d.Configs[j].Name })
	return d
}

func orEmpty(is []int32) []int32 {
	if is == nil {
		return []int32{}
	}
	return is
}

// printSection prints an underlined section title, as rpk does.
func printSection(w io.Writer, title string) {
	fmt.Fprintf(w, "%s\n%s\n", title, "================================"[:min(32, len(title))])
}

func printDescriptions(w io.Writer, ds []topicDescription) error {
	for i, d := range ds {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if d.Error != "" && len(d.Partitions) == 0 {
			fmt.Fprintf(w, "%s: %s\n", d.Name, d.Error)
			continue
		}
		printSection(w, "SUMMARY")
		tw := newTable(w)
		tableRow(tw, "NAME", d.Name)
		if d.ID != "" {
			tableRow(tw, "ID", d.ID)
		}
		tableRow(tw, "PARTITIONS", len(d.Partitions))
		if len(d.Partitions) > 0 {
			tableRow(tw, "REPLICAS", len(d.Partitions[0].Replicas))
		}
		if d.Internal {
			tableRow(tw, "INTERNAL", true)
		}
		if d.Error != "" {
			tableRow(tw, "ERROR", d.Error)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
		printSection(w, "CONFIGS")
		tw = newTable(w, "key", "value", "source")
		for _, c := range d.Configs {
			v := c.Value
			if c.Sensitive {
				v = "(sensitive)"
			}
			tableRow(tw, c.Name, v, c.Source)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
		printSection(w, "PARTITIONS")
		tw = newTable(w, "partition", "leader", "epoch", "replicas", "isr", "log-start-offset", "high-watermark")
		for _, p := range d.Partitions {
			cols := []any{p.Partition, p.Leader, p.LeaderEpoch, int32sString(p.Replicas), int32sString(p.ISR), p.LogStartOffset, p.HighWatermark}
			if p.Error != "" {
				cols = append(cols, p.Error)
			}
			tableRow(tw, cols...)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}
