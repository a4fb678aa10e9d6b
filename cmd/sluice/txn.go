package main

// sluice txn: list and describe transactional ids (ListTransactions,
// DescribeTransactions through franz-go kadm).

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func init() {
	clientCommands = append(clientCommands, txnCmd)
}

func txnCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "txn",
		Aliases: []string{"transactions", "transaction"},
		Short:   "List and describe transactional producers",
	}
	cmd.AddCommand(txnListCmd(g), txnDescribeCmd(g))
	return cmd
}

type txnSummary struct {
	TransactionalID string `json:"transactional_id"`
	ProducerID      int64  `json:"producer_id"`
	State           string `json:"state"`
}

func txnListCmd(g *globals) *cobra.Command {
	var states []string
	var pids []int64
	var pattern string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List transactional ids, optionally by state, producer id or id pattern",
		Args:    cobra.NoArgs,
		RunE: g.adminRunE(func(ctx context.Context, cmd *cobra.Command, _ []string, adm *kadm.Client, asJSON bool) error {
			listed, err := adm.ListTransactionsByTxPattern(ctx, pids, states, pattern)
			if err != nil {
				return fmt.Errorf("list transactions: %w", err)
			}
			out := []txnSummary{}
			for _, l := range listed.Sorted() {
				out = append(out, txnSummary{TransactionalID: l.TxnID, ProducerID: l.ProducerID, State: l.State})
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			tw := newTable(cmd.OutOrStdout(), "transactional-id", "producer-id", "state")
			for _, s := range out {
				tableRow(tw, s.TransactionalID, s.ProducerID, s.State)
			}
			return tw.Flush()
		}),
	}
	f := cmd.Flags()
	f.StringSliceVar(&states, "state", nil, "only these states (Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort)")
	f.Int64SliceVar(&pids, "producer-id", nil, "only these producer ids")
	f.StringVar(&pattern, "pattern", "", "only transactional ids matching this regular expression (whole id)")
	return cmd
}

type txnDetail struct {
	TransactionalID string             `json:"transactional_id"`
	State           string             `json:"state"`
	ProducerID      int64              `json:"producer_id"`
	ProducerEpoch   int16              `json:"producer_epoch"`
	TimeoutMs       int32              `json:"timeout_ms"`
	Started         string             `json:"started,omitempty"` // RFC 3339, for an ongoing transaction
	Partitions      map[string][]int32 `json:"partitions"`
	Error           string             `json:"error,omitempty"`
}

func txnDescribeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "describe ID...",
		Short: "Show the state, producer id and epoch, timeout and partitions of transactional ids",
		Args:  cobra.MinimumNArgs(1),
		RunE: g.adminRunE(func(ctx context.Context, cmd *cobra.Command, ids []string, adm *kadm.Client, asJSON bool) error {
			described, err := adm.DescribeTransactions(ctx, ids...)
			if err != nil {
				return fmt.Errorf("describe transactions: %w", err)
			}
			var out []txnDetail
			for _, id := range ids {
				d, ok := described[id]
				td := txnDetail{TransactionalID: id, Partitions: map[string][]int32{}}
				switch {
				case !ok:
					td.Error = "not found"
				case d.Err != nil:
					td.Error = d.Err.Error()
				default:
					td.State, td.ProducerID, td.ProducerEpoch, td.TimeoutMs = d.State, d.ProducerID, d.ProducerEpoch, d.TimeoutMillis
					if d.StartTimestamp >= 0 && d.State != "Empty" {
						td.Started = time.UnixMilli(d.StartTimestamp).UTC().Format(time.RFC3339Nano)
					}
					for topic, ps := range d.Topics {
						for p := range ps {
							td.Partitions[topic] = append(td.Partitions[topic], p)
						}
						sort.Slice(td.Partitions[topic], func(i, j int) bool { return td.Partitions[topic][i] < td.Partitions[topic][j] })
					}
				}
				out = append(out, td)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			w := cmd.OutOrStdout()
			for i, td := range out {
				if i > 0 {
					fmt.Fprintln(w)
				}
				if td.Error != "" {
					fmt.Fprintf(w, "%s: %s\n", td.TransactionalID, td.Error)
					continue
				}
				tw := newTable(w)
				tableRow(tw, "transactional-id:", td.TransactionalID)
				tableRow(tw, "state:", td.State)
				tableRow(tw, "producer:", fmt.Sprintf("id %d, epoch %d", td.ProducerID, td.ProducerEpoch))
				tableRow(tw, "timeout:", time.Duration(td.TimeoutMs)*time.Millisecond)
				if td.Started != "" {
					tableRow(tw, "started:", td.Started)
				}
				topics := make([]string, 0, len(td.Partitions))
				for t := range td.Partitions {
					topics = append(topics, t)
				}
				sort.Strings(topics)
				for _, t := range topics {
					ps := make([]string, len(td.Partitions[t]))
					for i, p := range td.Partitions[t] {
						ps[i] = fmt.Sprint(p)
					}
					tableRow(tw, "partitions:", t+" "+strings.Join(ps, ","))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			return nil
		}),
	}
}
