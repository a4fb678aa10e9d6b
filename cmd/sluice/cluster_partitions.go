package main

// sluice cluster partitions move|move-status|move-cancel: partition
// reassignment (KIP-455) as rpk spells it: -p topic/partition:replicas.

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func clusterPartitionsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "partitions", Short: "Move partition replicas between brokers"}
	var moves, cancels []string
	move := &cobra.Command{
		Use:   "move",
		Short: "Reassign partitions: -p topic/partition:broker,broker,... (the first broker is the preferred leader)",
		Args:  cobra.NoArgs,
		RunE: g.adminRunE(func(ctx context.Context, cmd *cobra.Command, _ []string, adm *kadm.Client, asJSON bool) error {
			if len(moves) == 0 {
				return fmt.Errorf("give at least one -p topic/partition:brokers")
			}
			req := kadm.AlterPartitionAssignmentsReq{}
			for _, m := range moves {
				topic, part, replicas, err := parseMove(m)
				if err != nil {
					return err
				}
				req.Assign(topic, part, replicas)
			}
			return reportAssignments(ctx, cmd, adm, req, asJSON)
		}),
	}
	move.Flags().StringArrayVarP(&moves, "partition", "p", nil, "topic/partition:broker,broker,... (repeatable)")
	cancel := &cobra.Command{
		Use:   "move-cancel",
		Short: "Cancel ongoing reassignments: -p topic/partition",
		Args:  cobra.NoArgs,
		RunE: g.adminRunE(func(ctx context.Context, cmd *cobra.Command, _ []string, adm *kadm.Client, asJSON bool) error {
			if len(cancels) == 0 {
				return fmt.Errorf("give at least one -p topic/partition")
			}
			req := kadm.AlterPartitionAssignmentsReq{}
			for _, c := range cancels {
				topic, part, err := parseTopicPartition(c)
				if err != nil {
					return err
				}
				req.CancelAssign(topic, part)
			}
			return reportAssignments(ctx, cmd, adm, req, asJSON)
		}),
	}
	cancel.Flags().StringArrayVarP(&cancels, "partition", "p", nil, "topic/partition (repeatable)")
	status := &cobra.Command{
		Use:   "move-status",
		Short: "List ongoing reassignments",
		Args:  cobra.NoArgs,
		RunE: g.adminRunE(func(ctx context.Context, cmd *cobra.Command, _ []string, adm *kadm.Client, asJSON bool) error {
			rs, err := adm.ListPartitionReassignments(ctx, nil)
			if err != nil {
				return fmt.Errorf("list reassignments: %w", err)
			}
			sorted := rs.Sorted()
			w := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(w, sorted)
			}
			tw := newTable(w, "topic", "partition", "replicas", "adding", "removing")
			for _, r := range sorted {
				tableRow(tw, r.Topic, r.Partition, joinIDs(r.Replicas), joinIDs(r.AddingReplicas), joinIDs(r.RemovingReplicas))
			}
			return tw.Flush()
		}),
	}
	cmd.AddCommand(move, cancel, status)
	return cmd
}

func reportAssignments(ctx context.Context, cmd *cobra.Command, adm *kadm.Client, req kadm.AlterPartitionAssignmentsReq, asJSON bool) error {
	rs, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		return fmt.Errorf("reassign: %w", err)
	}
	sorted := rs.Sorted()
	w := cmd.OutOrStdout()
	if asJSON {
		type row struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			Error     string `json:"error,omitempty"`
		}
		out := make([]row, len(sorted))
		for i, r := range sorted {
			out[i] = row{Topic: r.Topic, Partition: r.Partition}
			if r.Err != nil {
				out[i].Error = strings.TrimSpace(r.Err.Error() + " " + r.ErrMessage)
			}
		}
		if err := writeJSON(w, out); err != nil {
			return err
		}
	} else {
		tw := newTable(w, "topic", "partition", "status")
		for _, r := range sorted {
			status := "OK"
			if r.Err != nil {
				status = strings.TrimSpace(r.Err.Error() + " " + r.ErrMessage)
			}
			tableRow(tw, r.Topic, r.Partition, status)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return rs.Error()
}

// parseMove reads topic/partition:b1,b2,...
func parseMove(s string) (string, int32, []int32, error) {
	tp, list, ok := strings.Cut(s, ":")
	if !ok {
		return "", 0, nil, fmt.Errorf("-p %q: want topic/partition:broker,broker,...", s)
	}
	topic, part, err := parseTopicPartition(tp)
	if err != nil {
		return "", 0, nil, err
	}
	var replicas []int32
	for _, f := range strings.Split(list, ",") {
		id, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
		if err != nil || id < 0 {
			return "", 0, nil, fmt.Errorf("-p %q: %q is not a broker id", s, f)
		}
		replicas = append(replicas, int32(id))
	}
	return topic, part, replicas, nil
}

// parseTopicPartition reads topic/partition; topic names may not hold '/'.
func parseTopicPartition(s string) (string, int32, error) {
	i := strings.LastIndexByte(s, '/')
	if i <= 0 {
		return "", 0, fmt.Errorf("%q: want topic/partition", s)
	}
	p, err := strconv.ParseInt(s[i+1:], 10, 32)
	if err != nil || p < 0 {
		return "", 0, fmt.Errorf("%q: %q is not a partition number", s, s[i+1:])
	}
	return s[:i], int32(p), nil
}
