package cluster

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/hashicorp/memberlist"
)

// gossipDelegate gives memberlist this node's metadata; Sluice sends no
// user messages and no extra state over gossip.
type gossipDelegate Gossip

func (d *gossipDelegate) NodeMeta(limit int) []byte {
	g := (*Gossip)(d)
	g.mu.Lock()
	self := g.self
	g.mu.Unlock()
	b, err := encodeMeta(self, limit)
	if err != nil {
		g.log.Error("gossip metadata", "err", err)
		return nil
	}
	return b
}

func (d *gossipDelegate) NotifyMsg([]byte)                           {}
func (d *gossipDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *gossipDelegate) LocalState(join bool) []byte                { return nil }
func (d *gossipDelegate) MergeRemoteState(buf []byte, join bool)     {}

// gossipEvents turns memberlist events into member states.
type gossipEvents Gossip

func (e *gossipEvents) NotifyJoin(n *memberlist.Node)   { (*Gossip)(e).update(n, StateAlive) }
func (e *gossipEvents) NotifyUpdate(n *memberlist.Node) { (*Gossip)(e).update(n, StateAlive) }

// NotifyLeave reports a failure or a graceful leave alike; update tells them
// apart by the Leaving flag of the member's last metadata.
func (e *gossipEvents) NotifyLeave(n *memberlist.Node) { (*Gossip)(e).update(n, StateDead) }

// NotifyConflict is called when two live processes gossip the same name,
// that is the same node id. While this process starts, it is the newcomer
// and must refuse to run; afterwards the newcomer is the other one.
func (e *gossipEvents) NotifyConflict(existing, other *memberlist.Node) {
	g := (*Gossip)(e)
	if existing.Name != g.name {
		g.log.Error("gossip: two processes claim one node id", "member", existing.Name,
			"addr", addrOf(existing), "other", addrOf(other))
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.starting && g.conflict == nil {
		g.conflict = fmt.Errorf("node id %d is already used by the live member at gossip address %s; give this node another --node-id",
			g.self.ID, addrOf(other))
		return
	}
	g.log.Error("gossip: another process claims this node id; refused", "node", g.self.ID, "other", addrOf(other))
}

func addrOf(n *memberlist.Node) string {
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// newMemberlistLogger sends memberlist's "[LEVEL] memberlist: ..." lines to slog.
func newMemberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(memberlistWriter{l}, "", 0)
}

type memberlistWriter struct{ l *slog.Logger }

func (w memberlistWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	for prefix, lv := range map[string]slog.Level{"[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError} {
		if rest, ok := strings.CutPrefix(msg, prefix); ok {
			msg, level = strings.TrimSpace(rest), lv
			break
		}
	}
	w.l.Log(context.Background(), level, msg, "component", "memberlist")
	return len(p), nil
}

var (
	_ memberlist.Delegate         = (*gossipDelegate)(nil)
	_ memberlist.EventDelegate    = (*gossipEvents)(nil)
	_ memberlist.ConflictDelegate = (*gossipEvents)(nil)
)
