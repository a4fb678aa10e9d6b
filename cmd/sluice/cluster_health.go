package main

// sluice cluster health: rpk's health overview from one Metadata request:
// brokers down (replicas of some partition that are not among the live
// brokers), partitions without a leader, under-replicated partitions.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

type clusterHealth struct {
	Healthy         bool          `json:"healthy"`
	Reasons         []string      `json:"unhealthy_reasons"`
	Controller      int32         `json:"controller"`
	Brokers         []int32       `json:"brokers"`
	BrokersDown     []int32       `json:"brokers_down"`
	Leaderless      []partitionID `json:"leaderless_partitions"`
	UnderReplicated []partitionID `json:"under_replicated_partitions"`
}

type partitionID struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

func (p partitionID) String() string { return fmt.Sprintf("%s/%d", p.Topic, p.Partition) }

// errUnhealthy makes `cluster health --fail` exit non-zero.
var errUnhealthy = errors.New("cluster is unhealthy")

func healthOf(m kadm.Metadata) clusterHealth {
	h := clusterHealth{Controller: m.Controller, Reasons: []string{}, Brokers: []int32{}, BrokersDown: []int32{},
		Leaderless: []partitionID{}, UnderReplicated: []partitionID{}}
	live := map[int32]bool{}
	for _, b := range m.Brokers {
		live[b.NodeID] = true
		h.Brokers = append(h.Brokers, b.NodeID)
	}
	slices.Sort(h.Brokers)
	for _, t := range m.Topics.Sorted() {
		for _, p := range t.Partitions.Sorted() {
			id := partitionID{t.Topic, p.Partition}
			if p.Leader < 0 {
				h.Leaderless = append(h.Leaderless, id)
			}
			if len(p.ISR) < len(p.Replicas) {
				h.UnderReplicated = append(h.UnderReplicated, id)
			}
			for _, r := range p.Replicas {
				if !live[r] && !slices.Contains(h.BrokersDown, r) {
					h.BrokersDown = append(h.BrokersDown, r)
				}
			}
		}
	}
	slices.Sort(h.BrokersDown)
	if m.Controller < 0 {
		h.Reasons = append(h.Reasons, "no_controller")
	}
	if len(h.BrokersDown) > 0 {
		h.Reasons = append(h.Reasons, "nodes_down")
	}
	if len(h.Leaderless) > 0 {
		h.Reasons = append(h.Reasons, "leaderless_partitions")
	}
	if len(h.UnderReplicated) > 0 {
		h.Reasons = append(h.Reasons, "under_replicated_partitions")
	}
	h.Healthy = len(h.Reasons) == 0
	return h
}

func clusterHealthCmd(g *globals) *cobra.Command {
	var fail bool
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Show brokers down, leaderless and under-replicated partitions",
		Args:  cobra.NoArgs,
		RunE: g.adminRunE(func(ctx context.Context, cmd *cobra.Command, _ []string, adm *kadm.Client, asJSON bool) error {
			m, err := adm.Metadata(ctx)
			if err != nil {
				return fmt.Errorf("cluster metadata: %w", err)
			}
			h := healthOf(m)
			w := cmd.OutOrStdout()
			if asJSON {
				err = writeJSON(w, h)
			} else {
				err = printHealth(w, &h)
			}
			if err == nil && fail && !h.Healthy {
				cmd.SilenceUsage = true
				return errUnhealthy
			}
			return err
		}),
	}
	cmd.Flags().BoolVar(&fail, "fail", false, "exit with status 1 when the cluster is unhealthy")
	return cmd
}

func printHealth(w io.Writer, h *clusterHealth) error {
	tw := newTable(w)
	tableRow(tw, "HEALTHY", h.Healthy)
	tableRow(tw, "UNHEALTHY-REASONS", joinStrings(h.Reasons))
	tableRow(tw, "CONTROLLER", h.Controller)
	tableRow(tw, "BROKERS", joinIDs(h.Brokers))
	tableRow(tw, "BROKERS-DOWN", joinIDs(h.BrokersDown))
	tableRow(tw, "LEADERLESS-PARTITIONS", fmt.Sprintf("%d %s", len(h.Leaderless), joinPartitions(h.Leaderless)))
	tableRow(tw, "UNDER-REPLICATED-PARTITIONS", fmt.Sprintf("%d %s", len(h.UnderReplicated), joinPartitions(h.UnderReplicated)))
	return tw.Flush()
}

func joinStrings(s []string) string {
	if len(s) == 0 {
		return "[]"
	}
	return fmt.Sprint(s)
}

// joinPartitions lists up to ten partitions.
func joinPartitions(ps []partitionID) string {
	if len(ps) == 0 {
		return ""
	}
	shown := ps[:min(len(ps), 10)]
	s := fmt.Sprint(shown)
	if len(ps) > len(shown) {
		s += fmt.Sprintf(" and %d more", len(ps)-len(shown))
	}
	return s
}
