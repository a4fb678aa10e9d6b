package main

// sluice cluster info: cluster id, controller, brokers and topic count, from
// one metadata request; with --http-addr also the gossip members and the raft
// quorum, from that node's /api/cluster.

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sluice-io/sluice/broker"
)

func init() { clientCommands = append(clientCommands, clusterCmd) }

type clusterInfo struct {
	ClusterID      string       `json:"cluster_id"`
	Controller     int32        `json:"controller"`
	Brokers        []brokerInfo `json:"brokers"`
	Topics         int          `json:"topics"`
	InternalTopics int          `json:"internal_topics"`
	// Quorum is the node's /api/cluster answer, with --http-addr only.
	Quorum *broker.ClusterStatus `json:"quorum,omitempty"`
}

type brokerInfo struct {
	ID   int32  `json:"id"`
	Host string `json:"host"`
	Port int32  `json:"port"`
	Rack string `json:"rack,omitempty"`
}

func clusterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Inspect the cluster",
	}
	var httpAddr string
	info := &cobra.Command{
		Use:   "info",
		Short: "Print the cluster id, controller, brokers and topic count (and with --http-addr members and raft quorum)",
		Args:  cobra.NoArgs,
		RunE: g.adminRunE(func(ctx context.Context, cmd *cobra.Command, _ []string, adm *kadm.Client, asJSON bool) error {
			m, err := adm.Metadata(ctx)
			if err != nil {
				return fmt.Errorf("cluster metadata: %w", err)
			}
			info := clusterInfo{ClusterID: m.Cluster, Controller: m.Controller, Brokers: []brokerInfo{}}
			for _, b := range m.Brokers {
				bi := brokerInfo{ID: b.NodeID, Host: b.Host, Port: b.Port}
				if b.Rack != nil {
					bi.Rack = *b.Rack
				}
				info.Brokers = append(info.Brokers, bi)
			}
			if httpAddr != "" {
				q, err := fetchClusterStatus(ctx, httpAddr)
				if err != nil {
					return err
				}
				info.Quorum = &q
			}
			for _, td := range m.Topics {
				if td.IsInternal {
					info.InternalTopics++
				} else {
					info.Topics++
				}
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(w, info)
			}
			printSection(w, "CLUSTER")
			tw := newTable(w)
			tableRow(tw, "ID", info.ClusterID)
			tableRow(tw, "CONTROLLER", info.Controller)
			tableRow(tw, "TOPICS", info.Topics)
			if info.InternalTopics > 0 {
				tableRow(tw, "INTERNAL-TOPICS", info.InternalTopics)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(w)
			printSection(w, "BROKERS")
			tw = newTable(w, "id", "host", "port", "rack")
			for _, b := range info.Brokers {
				id := fmt.Sprint(b.ID)
				if b.ID == info.Controller {
					id += "*" // rpk's marker for the controller
				}
				tableRow(tw, id, b.Host, b.Port, b.Rack)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if info.Quorum != nil {
				fmt.Fprintln(w)
				return printQuorum(w, info.Quorum)
			}
			return nil
		}),
	}
	info.Flags().StringVar(&httpAddr, "http-addr", "", "a node's HTTP address (serve's --http-addr): also show gossip members and the raft quorum")
	cmd.AddCommand(info, clusterHealthCmd(g), clusterPartitionsCmd(g))
	return cmd
}
