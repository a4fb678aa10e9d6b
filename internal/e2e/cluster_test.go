package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// clusterNode is a node plus its gossip address and id.
type clusterNode struct {
	*node
	id     int32
	gossip string
}

// startCluster starts n `sluice serve` processes that join each other with
// --bootstrap-expect n; extra flags go to every node.
func startCluster(t *testing.T, n int, extra ...string) []*clusterNode {
	t.Helper()
	var gossips []string
	for range n {
		gossips = append(gossips, freePort(t))
	}
	var nodes []*clusterNode
	for i := range n {
		id := int32(i + 1)
		nd := newNode(t, "--node-id", fmt.Sprint(id), "--gossip-addr", gossips[i],
			"--bootstrap-expect", fmt.Sprint(n), "--join", strings.Join(gossips, ","))
		nd.extra = append(nd.extra, extra...)
		nodes = append(nodes, &clusterNode{node: nd, id: id, gossip: gossips[i]})
	}
	for _, nd := range nodes {
		nd.start()
	}
	return nodes
}

// metadataFrom asks this very node (not whichever broker the client picks)
// for the cluster metadata.
func (n *clusterNode) metadata(ctx context.Context) (*kmsg.MetadataResponse, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.kafka))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return nil, err
	}
	return resp.(*kmsg.MetadataResponse), nil
}

type quorumView struct {
	RaftLeader int32   `json:"raft_leader"`
	Voters     []int32 `json:"voters"`
	NonVoters  []int32 `json:"non_voters"`
}

// quorum reads the node's /api/cluster.
func (n *clusterNode) quorum(ctx context.Context) (quorumView, error) {
	var q quorumView
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.http+"/api/cluster", nil)
	if err != nil {
		return q, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return q, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return q, fmt.Errorf("/api/cluster: %s", resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&q)
	return q, err
}

// waitFor polls cond every 50 ms for up to 20 s; cond describes what it saw.
func waitFor(t *testing.T, what string, cond func(ctx context.Context) (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		ok, seen := cond(ctx)
		cancel()
		if ok {
			return
		}
		last = seen
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within 20s; last seen: %s", what, last)
}

// waitTopic waits until every given node's Metadata lists the topic.
func waitTopic(t *testing.T, topic string, nodes ...*clusterNode) {
	t.Helper()
	for _, n := range nodes {
		waitFor(t, fmt.Sprintf("node %d lists topic %s", n.id, topic), func(ctx context.Context) (bool, string) {
			m, err := n.metadata(ctx)
			if err != nil {
				return false, err.Error()
			}
			for _, tp := range m.Topics {
				if tp.Topic != nil && *tp.Topic == topic && tp.ErrorCode == 0 {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%d topics", len(m.Topics))
		})
	}
}

// createTopic creates a topic through a client that knows only n; the client
// finds the controller from n's Metadata, as any Kafka admin client does.
func createTopic(t *testing.T, n *clusterNode, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.kafka), kgo.RetryTimeout(15*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create %s through node %d: %v", topic, n.id, err)
	}
}

// TestClusterMembershipAndQuorum starts three nodes with --bootstrap-expect 3:
// they form one metadata quorum, list each other, take writes through any
// node, drop a node that leaves gracefully from the quorum, take it back as
// a voter when it returns, and survive the SIGKILL of the raft leader.
func TestClusterMembershipAndQuorum(t *testing.T) {
	nodes := startCluster(t, 3)
	byID := map[int32]*clusterNode{}
	for _, n := range nodes {
		byID[n.id] = n
	}

	// Every node lists the three brokers and the same controller.
	var controller int32 = -1
	for _, n := range nodes {
		waitFor(t, fmt.Sprintf("node %d lists 3 brokers and a controller", n.id), func(ctx context.Context) (bool, string) {
			m, err := n.metadata(ctx)
			if err != nil {
				return false, err.Error()
			}
			seen := fmt.Sprintf("%d brokers, controller %d", len(m.Brokers), m.ControllerID)
			if len(m.Brokers) != 3 || m.ControllerID < 1 || (controller != -1 && m.ControllerID != controller) {
				return false, seen
			}
			for _, b := range m.Brokers {
				if want := byID[b.NodeID]; want == nil || fmt.Sprintf("%s:%d", b.Host, b.Port) != want.kafka {
					return false, fmt.Sprintf("broker %d at %s:%d", b.NodeID, b.Host, b.Port)
				}
			}
			controller = m.ControllerID
			return true, ""
		})
	}
	leader := byID[controller]
	t.Logf("controller (raft leader) is node %d", controller)

	// A second process with node 2's id is refused clearly.
	dupCtx, dupCancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer dupCancel()
	dup := exec.CommandContext(dupCtx, binary, "serve", "--node-id", "2", "--data-dir", t.TempDir(),
		"--kafka-addr", freePort(t), "--http-addr", freePort(t), "--raft-addr", freePort(t),
		"--gossip-addr", freePort(t), "--join", nodes[0].gossip)
	out, err := dup.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "node id 2 is already used") {
		t.Fatalf("a second node 2: exit %v, output:\n%s", err, out)
	}

	// A write through node 2 reaches node 3's Metadata.
	createTopic(t, nodes[1], "through-node-2")
	waitTopic(t, "through-node-2", nodes[2])

	// SIGTERM a follower: the leader removes it from the raft configuration.
	var follower, other *clusterNode
	for _, n := range nodes {
		if n == leader {
			continue
		}
		if follower == nil {
			follower = n
		} else {
			other = n
		}
	}
	follower.stop()
	waitFor(t, fmt.Sprintf("leader drops node %d from the quorum", follower.id), func(ctx context.Context) (bool, string) {
		q, err := leader.quorum(ctx)
		if err != nil {
			return false, err.Error()
		}
		return len(q.Voters) == 2 && !slices.Contains(q.Voters, follower.id) && !slices.Contains(q.NonVoters, follower.id),
			fmt.Sprintf("%+v", q)
	})

	// It comes back on its data directory and is a voter again (voters < 3),
	// in the leader's configuration and, once caught up, in its own.
	follower.start()
	for _, n := range []*clusterNode{leader, follower} {
		waitFor(t, fmt.Sprintf("node %d sees node %d as a voter again", n.id, follower.id), func(ctx context.Context) (bool, string) {
			q, err := n.quorum(ctx)
			if err != nil {
				return false, err.Error()
			}
			return len(q.Voters) == 3 && slices.Contains(q.Voters, follower.id) && q.RaftLeader == leader.id, fmt.Sprintf("%+v", q)
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	info, err := follower.cli(ctx, "", "cluster", "info", "--http-addr", follower.http)
	if err != nil || !strings.Contains(info, "VOTERS") || !strings.Contains(info, "leader") {
		t.Fatalf("cluster info: %v\n%s", err, info)
	}

	// SIGKILL the leader: the two others elect one of themselves and take
	// metadata writes.
	leader.kill()
	rest := []*clusterNode{follower, other}
	var newLeader int32
	for _, n := range rest {
		waitFor(t, fmt.Sprintf("node %d sees a new leader", n.id), func(ctx context.Context) (bool, string) {
			q, err := n.quorum(ctx)
			if err != nil {
				return false, err.Error()
			}
			ok := (q.RaftLeader == follower.id || q.RaftLeader == other.id) && (newLeader == 0 || q.RaftLeader == newLeader)
			if ok {
				newLeader = q.RaftLeader
			}
			return ok, fmt.Sprintf("%+v", q)
		})
	}
	t.Logf("new leader is node %d", newLeader)
	createTopic(t, other, "after-failover")
	waitTopic(t, "after-failover", rest...)
	waitTopic(t, "through-node-2", rest...)
}
