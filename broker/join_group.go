package broker

import (
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup: v0-9
//
// The classic group protocol's join phase (package group): any protocol
// type, static membership (v5+), the v4+ two-step join with
// MEMBER_ID_REQUIRED, the leader's member list, SkipAssignment for a static
// leader rejoining a stable group (v9), GROUP_MAX_SIZE_REACHED past
// group.max.size. The response waits, on the connection's writer, until
// the join phase ends; the reader goes on.
//
// The v8 reason is logged (rejoins are what an operator chasing
// rebalances wants to see). A KIP-848 group with members refuses classic
// joins with INCONSISTENT_GROUP_PROTOCOL; an empty one becomes classic.

func init() { register(11, 0, 9, handleJoinGroup) }

func handleJoinGroup(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.JoinGroupRequest)
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	if !b.offsetsTopicReady() {
		resp.ErrorCode, resp.Generation, resp.MemberID = kerr.CoordinatorNotAvailable.Code, -1, req.MemberID
		resp.Protocol = kmsg.StringPtr("")
		return done(resp)
	}
	if req.Reason != nil && *req.Reason != "" {
		b.logger.Info("group member joining", "group", req.Group, "member", req.MemberID, "reason", *req.Reason)
	}
	ch := b.groups.of(req.Group).JoinGroup(req, r.version, r.clientID, clientHost(r))
	return &reply{resp: resp, ready: func() {
		v := resp.Version
		select {
		case got := <-ch:
			*resp = *got
		case <-b.closing:
			*resp = *kmsg.NewPtrJoinGroupResponse()
			resp.ErrorCode, resp.Generation, resp.MemberID = kerr.CoordinatorNotAvailable.Code, -1, req.MemberID
			resp.Protocol = kmsg.StringPtr("")
		}
		resp.Version = v
		if v < 7 && resp.Protocol == nil {
			resp.Protocol = kmsg.StringPtr("")
		}
	}}, nil
}

// clientHost is the client's address as Kafka shows it in group
// descriptions ("/127.0.0.1").
func clientHost(r *request) string {
	host, _, err := net.SplitHostPort(r.conn.c.RemoteAddr().String())
	if err != nil {
		return "/" + r.conn.c.RemoteAddr().String()
	}
	return "/" + host
}
