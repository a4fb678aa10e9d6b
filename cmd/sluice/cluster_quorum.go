package main

// The quorum half of `sluice cluster info`: members and raft configuration
// from a node's GET /api/cluster.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/sluice-io/sluice/broker"
)

func fetchClusterStatus(ctx context.Context, httpAddr string) (broker.ClusterStatus, error) {
	var st broker.ClusterStatus
	url := "http://" + httpAddr + "/api/cluster"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return st, fmt.Errorf("cluster status: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("cluster status from %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return st, fmt.Errorf("cluster status from %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("cluster status from %s: %w", url, err)
	}
	return st, nil
}

func printQuorum(w io.Writer, st *broker.ClusterStatus) error {
	printSection(w, "MEMBERS")
	tw := newTable(w, "id", "kafka", "raft", "gossip", "state", "raft-role", "rack")
	for _, m := range st.Members {
		role := "-"
		switch {
		case m.ID == st.RaftLeader:
			role = "leader"
		case slices.Contains(st.Voters, m.ID):
			role = "voter"
		case slices.Contains(st.NonVoters, m.ID):
			role = "non-voter"
		}
		tableRow(tw, m.ID, m.Kafka, m.Raft, m.Gossip, m.State, role, m.Rack)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	printSection(w, "RAFT")
	tw = newTable(w)
	tableRow(tw, "LEADER", st.RaftLeader)
	tableRow(tw, "VOTERS", joinIDs(st.Voters))
	tableRow(tw, "NON-VOTERS", joinIDs(st.NonVoters))
	return tw.Flush()
}

func joinIDs(ids []int32) string {
	if len(ids) == 0 {
		return "-"
	}
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprint(id)
	}
	return strings.Join(parts, ",")
}
