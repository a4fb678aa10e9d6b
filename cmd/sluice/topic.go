package main

// sluice topic: create, list, describe (topic_describe.go), delete,
// alter-config and add-partitions, all through kadm.

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func init() { clientCommands = append(clientCommands, topicCmd) }

func topicCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Create, list, describe, alter and delete topics",
	}
	cmd.AddCommand(
		topicCreateCmd(g),
		topicListCmd(g),
		topicDescribeCmd(g),
		topicDeleteCmd(g),
		topicAlterConfigCmd(g),
		topicAddPartitionsCmd(g),
	)
	return cmd
}

// uniqueNames drops repeated names while keeping the order the user gave.
func uniqueNames(names []string) []string {
	seen := make(map[string]bool, len(names))
	var out []string
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

func topicCreateCmd(g *globals) *cobra.Command {
	var (
		partitions int32
		replicas   int16
		configs    []string
	)
	cmd := &cobra.Command{
		Use:   "create NAME...",
		Short: "Create topics",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := make(map[string]*string, len(configs))
			for _, kv := range configs {
				k, v, err := parseKV(kv)
				if err != nil {
					return fmt.Errorf("-c: %w", err)
				}
				cfg[k] = kadm.StringPtr(v)
			}
			adm, ctx, done, err := g.newAdmin(cmd)
			if err != nil {
				return err
			}
			defer done()
			topics := uniqueNames(args)
			resps, err := adm.CreateTopics(ctx, partitions, replicas, cfg, topics...)
			if err != nil {
				return fmt.Errorf("create topics: %w", err)
			}
			var rs []resultStatus
			for _, t := range topics {
				r, ok := resps[t]
				switch {
				case !ok:
					rs = append(rs, resultStatus{t, "missing from the broker's response"})
				default:
					rs = append(rs, resultStatus{t, errText(r.Err, r.ErrMessage)})
				}
			}
			return printStatuses(cmd, g, "create", rs)
		},
	}
	cmd.Flags().Int32VarP(&partitions, "partitions", "p", -1, "number of partitions (-1: broker default)")
	cmd.Flags().Int16VarP(&replicas, "replicas", "r", -1, "replication factor (-1: broker default)")
	cmd.Flags().StringArrayVarP(&configs, "config", "c", nil, "topic config key=value (repeatable)")
	return cmd
}

// topicSummary is one row of `topic list`.
type topicSummary struct {
	Name       string `json:"name"`
	ID         string `json:"id,omitempty"`
	Partitions int    `json:"partitions"`
	Replicas   int    `json:"replicas"`
	Internal   bool   `json:"internal,omitempty"`
	Error      string `json:"error,omitempty"`
}

func topicListCmd(g *globals) *cobra.Command {
	var internal bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List topics",
		Args:    cobra.NoArgs,
		RunE: g.adminRunE(func(ctx context.Context, cmd *cobra.Command, _ []string, adm *kadm.Client, asJSON bool) error {
			var (
				tds kadm.TopicDetails
				err error
			)
			if internal {
				tds, err = adm.ListTopicsWithInternal(ctx)
			} else {
				tds, err = adm.ListTopics(ctx)
			}
			if err != nil {
				return fmt.Errorf("list topics: %w", err)
			}
			out := make([]topicSummary, 0, len(tds))
			for _, td := range tds.Sorted() {
				s := topicSummary{Name: td.Topic, Partitions: len(td.Partitions), Internal: td.IsInternal}
				if td.ID != (kadm.TopicID{}) {
					s.ID = td.ID.String()
				}
				if p, ok := td.Partitions[0]; ok {
					s.Replicas = len(p.Replicas)
				}
				s.Error = errText(td.Err, "")
				out = append(out, s)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			tw := newTable(cmd.OutOrStdout(), "name", "partitions", "replicas")
			for _, s := range out {
				tableRow(tw, s.Name, s.Partitions, s.Replicas)
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVarP(&internal, "internal", "i", false, "include internal topics such as __consumer_offsets")
	return cmd
}

func topicDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME...",
		Short: "Delete topics",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			adm, ctx, done, err := g.newAdmin(cmd)
			if err != nil {
				return err
			}
			defer done()
			topics := uniqueNames(args)
			resps, err := adm.DeleteTopics(ctx, topics...)
			if err != nil {
				return fmt.Errorf("delete topics: %w", err)
			}
			var rs []resultStatus
			for _, t := range topics {
				if r, ok := resps[t]; ok {
					rs = append(rs, resultStatus{t, errText(r.Err, r.ErrMessage)})
				} else {
					rs = append(rs, resultStatus{t, "missing from the broker's response"})
				}
			}
			return printStatuses(cmd, g, "delete", rs)
		},
	}
}

func topicAlterConfigCmd(g *globals) *cobra.Command {
	var set, del, appendKV, subtract []string
	cmd := &cobra.Command{
		Use:   "alter-config NAME... --set k=v --delete k",
		Short: "Incrementally alter topic configs",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ops []kadm.AlterConfig
			for _, spec := range []struct {
				op   kadm.IncrementalOp
				flag string
				kvs  []string
			}{{kadm.SetConfig, "--set", set}, {kadm.AppendConfig, "--append", appendKV}, {kadm.SubtractConfig, "--subtract", subtract}} {
				for _, kv := range spec.kvs {
					k, v, err := parseKV(kv)
					if err != nil {
						return fmt.Errorf("%s: %w", spec.flag, err)
					}
					ops = append(ops, kadm.AlterConfig{Op: spec.op, Name: k, Value: kadm.StringPtr(v)})
				}
			}
			for _, k := range del {
				ops = append(ops, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
			}
			if len(ops) == 0 {
				return fmt.Errorf("nothing to alter: give --set, --delete, --append or --subtract")
			}
			adm, ctx, done, err := g.newAdmin(cmd)
			if err != nil {
				return err
			}
			defer done()
			topics := uniqueNames(args)
			resps, err := adm.AlterTopicConfigs(ctx, ops, topics...)
			if err != nil {
				return fmt.Errorf("alter topic configs: %w", err)
			}
			var rs []resultStatus
			for _, t := range topics {
				r, err := resps.On(t, nil)
				if err != nil {
					rs = append(rs, resultStatus{t, "missing from the broker's response"})
					continue
				}
				rs = append(rs, resultStatus{t, errText(r.Err, r.ErrMessage)})
			}
			return printStatuses(cmd, g, "alter-config", rs)
		},
	}
	cmd.Flags().StringArrayVarP(&set, "set", "s", nil, "set a config key=value (repeatable)")
	cmd.Flags().StringArrayVarP(&del, "delete", "d", nil, "delete a config key, restoring its default (repeatable)")
	cmd.Flags().StringArrayVar(&appendKV, "append", nil, "append key=value to a list config (repeatable)")
	cmd.Flags().StringArrayVar(&subtract, "subtract", nil, "remove key=value from a list config (repeatable)")
	return cmd
}

func topicAddPartitionsCmd(g *globals) *cobra.Command {
	var num int
	cmd := &cobra.Command{
		Use:   "add-partitions NAME... --num N",
		Short: "Add N partitions to topics",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if num <= 0 {
				return fmt.Errorf("--num must be a positive number of partitions to add")
			}
			adm, ctx, done, err := g.newAdmin(cmd)
			if err != nil {
				return err
			}
			defer done()
			topics := uniqueNames(args)
			resps, err := adm.CreatePartitions(ctx, num, topics...)
			if err != nil {
				return fmt.Errorf("add partitions: %w", err)
			}
			var rs []resultStatus
			for _, t := range topics {
				if r, ok := resps[t]; ok {
					rs = append(rs, resultStatus{t, errText(r.Err, r.ErrMessage)})
				} else {
					rs = append(rs, resultStatus{t, "missing from the broker's response"})
				}
			}
			return printStatuses(cmd, g, "add-partitions", rs)
		},
	}
	cmd.Flags().IntVarP(&num, "num", "n", 0, "number of partitions to add")
	return cmd
}
