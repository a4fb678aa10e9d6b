package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

// epochState is one member's broker epoch in a node's /api/cluster.
type epochState struct {
	ID          int32 `json:"id"`
	BrokerEpoch int64 `json:"broker_epoch"`
	Fenced      bool  `json:"fenced"`
}

// brokerEpoch reads member id's broker epoch from node n's /api/cluster
// (0 while its running process is not registered).
func (n *clusterNode) brokerEpoch(ctx context.Context, id int32) (epochState, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.http+"/api/cluster", nil)
	if err != nil {
		return epochState{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return epochState{}, err
	}
	defer resp.Body.Close()
	var st struct {
		Members []epochState `json:"members"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return epochState{}, err
	}
	for _, m := range st.Members {
		if m.ID == id {
			return m, nil
		}
	}
	return epochState{}, fmt.Errorf("member %d not listed", id)
}

// TestBrokerEpochQuickRestart SIGKILLs a follower under acks=all producers
// and starts it again at once, well within gossip's failure detection: its
// new process registers with a new broker epoch, the controller takes the
// old process out of the ISR (as for a dead broker), and the new one joins
// the ISR again after catching up. Every acknowledged write is read back.
func TestBrokerEpochQuickRestart(t *testing.T) {
	nodes := startCluster(t, 3, replicatedFlags...)
	var seeds []string
	for _, n := range nodes {
		seeds = append(seeds, n.kafka)
	}
	const topic = "epochs"
	createReplicated(t, nodes[0], topic, 1, 3)
	waitFullISR(t, nodes[0], topic, 3)

	// The victim follows partition 0 and is not the raft leader, so the
	// controller that fences it keeps running; the observer is another node.
	var victim, observer *clusterNode
	waitFor(t, "a follower that is not the controller", func(ctx context.Context) (bool, string) {
		ps, err := nodes[0].partitions(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		q, err := nodes[0].quorum(ctx)
		if err != nil {
			return false, err.Error()
		}
		victim, observer = nil, nil
		for _, n := range nodes {
			if victim == nil && n.id != ps[0].Leader && n.id != q.RaftLeader && q.RaftLeader >= 0 {
				victim = n
			} else if observer == nil {
				observer = n
			}
		}
		return victim != nil, fmt.Sprintf("leader %d controller %d", ps[0].Leader, q.RaftLeader)
	})
	var before epochState
	waitFor(t, "the victim's broker epoch", func(ctx context.Context) (bool, string) {
		var err error
		before, err = observer.brokerEpoch(ctx, victim.id)
		if err != nil {
			return false, err.Error()
		}
		return before.BrokerEpoch > 0 && !before.Fenced, fmt.Sprintf("%+v", before)
	})

	load := startProducers(t, seeds, topic, 2, 1_000_000)
	waitFor(t, "first acknowledged writes", func(context.Context) (bool, string) {
		return load.count() > 500, fmt.Sprint(load.count())
	})

	// Watch the ISR from the kill on: the victim must leave it.
	var (
		mu       sync.Mutex
		dropped  bool
		lastISR  []int32
		stopSeen = make(chan struct{})
		seenDone = make(chan struct{})
	)
	go func() {
		defer close(seenDone)
		for {
			select {
			case <-stopSeen:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			ps, err := observer.partitions(ctx, topic)
			cancel()
			if err == nil && len(ps) == 1 {
				mu.Lock()
				lastISR = ps[0].ISR
				dropped = dropped || !slices.Contains(ps[0].ISR, victim.id)
				mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	killed := time.Now()
	victim.kill()
	startup := victim.start()
	t.Logf("node %d killed and listening again after %s (process start %s)", victim.id,
		time.Since(killed).Round(time.Millisecond), startup.Round(time.Millisecond))

	var after epochState
	waitFor(t, "a new broker epoch for the restarted node", func(ctx context.Context) (bool, string) {
		var err error
		after, err = observer.brokerEpoch(ctx, victim.id)
		if err != nil {
			return false, err.Error()
		}
		return after.BrokerEpoch > before.BrokerEpoch, fmt.Sprintf("%+v, before %+v", after, before)
	})
	t.Logf("broker epoch of node %d: %d -> %d", victim.id, before.BrokerEpoch, after.BrokerEpoch)
	waitFor(t, "the restarted node out of the ISR", func(context.Context) (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return dropped, fmt.Sprint(lastISR)
	})
	waitFullISR(t, observer, topic, 3)
	t.Logf("node %d back in the ISR %s after the kill", victim.id, time.Since(killed).Round(time.Millisecond))
	close(stopSeen)
	<-seenDone
	if st, err := observer.brokerEpoch(context.Background(), victim.id); err != nil || st.Fenced || st.BrokerEpoch != after.BrokerEpoch {
		t.Errorf("after rejoining: %+v (%v), want unfenced at epoch %d", st, err, after.BrokerEpoch)
	}

	// Writes went on; the restart is what the controller saw, not a death.
	rejoined := load.count()
	waitFor(t, "writes acknowledged after the rejoin", func(context.Context) (bool, string) {
		return load.count() > rejoined+300, fmt.Sprint(load.count() - rejoined)
	})
	acked, fails := load.finish()
	t.Logf("%d writes acknowledged, %d failed", len(acked), fails)
	rep := checkHistory(acked, readAll(t, seeds, topic))
	t.Logf("history: %s", rep)
	if !rep.ok() {
		t.Fatalf("history check failed: %s", rep)
	}
	// The controller saw the restart; gossip, with the process back within
	// milliseconds, usually never declared the node dead.
	restarts, deaths := 0, 0
	dead := []byte(fmt.Sprintf("member=%d addr=%s state=dead", victim.id, victim.gossip))
	for _, n := range nodes {
		log, _ := os.ReadFile(n.logPath)
		restarts += bytes.Count(log, []byte("broker restarted: new incarnation"))
		deaths += bytes.Count(log, dead)
	}
	t.Logf("gossip declared node %d dead %d times", victim.id, deaths)
	if restarts == 0 {
		t.Error("no controller logged the restart")
	}
}
