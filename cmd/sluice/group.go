package main

// sluice group: list, describe (members, committed offsets and lag), seek,
// delete and offset-delete for consumer groups, built on franz-go kadm.

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func init() {
	clientCommands = append(clientCommands, groupCmd)
}

func groupCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "group",
		Aliases: []string{"groups", "g"},
		Short:   "List, describe, seek and delete consumer groups",
	}
	cmd.AddCommand(
		groupListCmd(g),
		groupDescribeCmd(g),
		groupSeekCmd(g),
		groupDeleteCmd(g),
		groupOffsetDeleteCmd(g),
	)
	return cmd
}

// ---- list ----

type groupSummary struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
}

func groupListCmd(g *globals) *cobra.Command {
	var states []string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List consumer groups",
		Args:    cobra.NoArgs,
		RunE: g.adminRunE(func(ctx context.Context, cmd *cobra.Command, _ []string, adm *kadm.Client, asJSON bool) error {
			listed, err := adm.ListGroups(ctx, states...)
			if err != nil {
				return fmt.Errorf("list groups: %w", err)
			}
			// Filter locally too, case-insensitively, in case the broker
			// ignores the states filter.
			want := map[string]bool{}
			for _, s := range states {
				want[strings.ToLower(s)] = true
			}
			out := []groupSummary{}
			for _, l := range listed.Sorted() {
				if len(want) > 0 && !want[strings.ToLower(l.State)] {
					continue
				}
				out = append(out, groupSummary{Group: l.Group, State: l.State, ProtocolType: l.ProtocolType})
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(w, out)
			}
			tw := newTable(w, "group", "state", "protocol-type")
			for _, s := range out {
				tableRow(tw, s.Group, s.State, s.ProtocolType)
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().StringSliceVarP(&states, "state", "s", nil, "only groups in these states (e.g. Empty,Stable); repeatable or comma-separated")
	return cmd
}

// ---- describe ----

type groupDescription struct {
	Group        string           `json:"group"`
	Coordinator  int32            `json:"coordinator"`
	State        string           `json:"state"`
	ProtocolType string           `json:"protocol_type"`
	Protocol     string           `json:"protocol"`
	NumMembers   int              `json:"num_members"`
	Members      []groupMember    `json:"members"`
	Partitions   []groupPartition `json:"partitions"`
	TotalLag     int64            `json:"total_lag"`
	Error        string           `json:"error,omitempty"`
}

type groupMember struct {
	MemberID    string             `json:"member_id"`
	InstanceID  string             `json:"instance_id,omitempty"`
	ClientID    string             `json:"client_id"`
	Host        string             `json:"host"`
	Assignments []topicAssignments `json:"assignments"`
}

type topicAssignments struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

type groupPartition struct {
	Topic         string `json:"topic"`
	Partition     int32  `json:"partition"`
	CurrentOffset int64  `json:"current_offset"` // -1 when nothing is committed
	LogEndOffset  int64  `json:"log_end_offset"` // -1 when unknown
	Lag           int64  `json:"lag"`            // -1 when unknown
	MemberID      string `json:"member_id,omitempty"`
	Error         string `json:"error,omitempty"`
}

func groupDescribeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "describe NAME...",
		Aliases: []string{"info"},
		Short:   "Describe groups: state, members, committed offsets and lag",
		Long: "Describe consumer groups. With --format json the output is always a JSON\n" +
			"array, one object per group named, in the order given.\n\n" +
			"As kafka-consumer-groups.sh does, a partition assigned to a member but without a\n" +
			"committed offset shows \"-\" (-1 in JSON) as its current offset and lag and adds\n" +
			"nothing to the total lag, and a partition neither committed nor assigned is not\n" +
			"listed.",
		Args: cobra.MinimumNArgs(1),
		RunE: g.adminRunE(func(ctx context.Context, cmd *cobra.Command, args []string, adm *kadm.Client, asJSON bool) error {
			names := uniqueNames(args)
			lags, err := adm.Lag(ctx, names...)
			if err != nil {
				return fmt.Errorf("describe groups: %w", err)
			}
			out := make([]groupDescription, 0, len(names))
			failed := 0
			for _, n := range names {
				d := describeGroupLag(n, lags)
				if d.Error != "" {
					failed++
				}
				out = append(out, d)
			}
			w := cmd.OutOrStdout()
			if asJSON {
				err = writeJSON(w, out)
			} else {
				err = printGroupDescriptions(w, out)
			}
			if err != nil {
				return err
			}
			if failed > 0 {
				return fmt.Errorf("describe failed for %d of %d groups", failed, len(names))
			}
			return nil
		}),
	}
}

func describeGroupLag(name string, lags kadm.DescribedGroupLags) groupDescription {
	d := groupDescription{Group: name, Members: []groupMember{}, Partitions: []groupPartition{}}
	l, ok := lags[name]
	if !ok {
		d.Error = "missing from the broker's response"
		return d
	}
	d.Coordinator = l.Coordinator.NodeID
	d.State = l.State
	d.ProtocolType = l.ProtocolType
	d.Protocol = l.Protocol
	d.NumMembers = len(l.Members)
	if err := l.Error(); err != nil {
		d.Error = err.Error()
		return d
	}
	for _, m := range l.Members {
		gm := groupMember{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost, Assignments: []topicAssignments{}}
		if m.InstanceID != nil {
			gm.InstanceID = *m.InstanceID
		}
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				ps := append([]int32{}, t.Partitions...)
				sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
				gm.Assignments = append(gm.Assignments, topicAssignments{Topic: t.Topic, Partitions: ps})
			}
			sort.Slice(gm.Assignments, func(i, j int) bool { return gm.Assignments[i].Topic < gm.Assignments[j].Topic })
		}
		d.Members = append(d.Members, gm)
	}
	for _, pl := range l.Lag.Sorted() {
		committed := pl.Commit.At >= 0
		if !committed && pl.Member == nil {
			// kadm lists every partition of a topic the group committed
			// to or subscribes to, lagging by its whole log when nothing
			// is committed (after an offset-delete of one partition, say);
			// the group has no position there.
			continue
		}
		gp := groupPartition{
			Topic:         pl.Topic,
			Partition:     pl.Partition,
			CurrentOffset: pl.Commit.At,
			LogEndOffset:  -1,
			Lag:           pl.Lag,
		}
		if !committed {
			gp.Lag = -1 // no position to measure from
		}
		if pl.End.Err == nil {
			gp.LogEndOffset = pl.End.Offset
		}
		if pl.Member != nil {
			gp.MemberID = pl.Member.MemberID
		}
		if pl.Err != nil {
			gp.Error = pl.Err.Error()
		}
		if gp.Lag > 0 {
			d.TotalLag += gp.Lag
		}
		d.Partitions = append(d.Partitions, gp)
	}
	return d
}

// offsetText prints -1 (unknown / not committed) as "-".
func offsetText(o int64) string {
	if o < 0 {
		return "-"
	}
	return strconv.FormatInt(o, 10)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func assignmentsText(as []topicAssignments) string {
	if len(as) == 0 {
		return "-"
	}
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.Topic + int32sString(a.Partitions)
	}
	return strings.Join(parts, ", ")
}

func printGroupDescriptions(w io.Writer, ds []groupDescription) error {
	for i, d := range ds {
		if i > 0 {
			fmt.Fprintln(w)
		}
		tw := newTable(w)
		tableRow(tw, "GROUP", d.Group)
		if d.Error != "" {
			tableRow(tw, "ERROR", d.Error)
			if err := tw.Flush(); err != nil {
				return err
			}
			continue
		}
		tableRow(tw, "COORDINATOR", d.Coordinator)
		tableRow(tw, "STATE", d.State)
		tableRow(tw, "PROTOCOL-TYPE", orDash(d.ProtocolType))
		tableRow(tw, "PROTOCOL", orDash(d.Protocol))
		tableRow(tw, "MEMBERS", d.NumMembers)
		tableRow(tw, "TOTAL-LAG", d.TotalLag)
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(d.Members) > 0 {
			fmt.Fprintln(w)
			tw = newTable(w, "member-id", "instance-id", "client-id", "host", "assignments")
			for _, m := range d.Members {
				tableRow(tw, m.MemberID, orDash(m.InstanceID), orDash(m.ClientID), orDash(m.Host), assignmentsText(m.Assignments))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		if len(d.Partitions) > 0 {
			fmt.Fprintln(w)
			withErr := false
			for _, p := range d.Partitions {
				withErr = withErr || p.Error != ""
			}
			headers := []string{"topic", "partition", "current-offset", "log-end-offset", "lag", "member"}
			if withErr {
				headers = append(headers, "error")
			}
			tw = newTable(w, headers...)
			for _, p := range d.Partitions {
				cols := []any{p.Topic, p.Partition, offsetText(p.CurrentOffset), offsetText(p.LogEndOffset), offsetText(p.Lag), orDash(p.MemberID)}
				if withErr {
					cols = append(cols, orDash(p.Error))
				}
				tableRow(tw, cols...)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
	}
	return nil
}
