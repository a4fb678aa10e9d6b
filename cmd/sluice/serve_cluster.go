package main

import (
	"encoding/json"
	"net/http"

	"github.com/sluice-io/sluice/broker"
)

// clusterStatusHandler serves GET /api/cluster: this node's view of the
// gossip members and the raft quorum, read by `sluice cluster info --http-addr`.
func clusterStatusHandler(b *broker.Broker) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, `{"error_code":405,"message":"use GET"}`, http.StatusMethodNotAllowed)
			return
		}
		st, err := b.ClusterStatus()
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			_ = json.NewEncoder(w).Encode(map[string]any{"error_code": 500, "message": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(st)
	}
}
