package main

// Helpers shared by the client subcommands: building franz-go clients from the
// global flags, and writing text tables or JSON to the command's stdout.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// adminTimeout bounds one admin command (create, describe, ...) so that an
// unreachable cluster gives an error instead of retrying forever.
const adminTimeout = 30 * time.Second

// seedBrokers splits the --brokers flag into host:port seeds.
func (g *globals) seedBrokers() []string {
	var seeds []string
	for _, s := range strings.Split(g.brokers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			seeds = append(seeds, s)
		}
	}
	return seeds
}

// jsonOutput reports whether --format json was requested, and rejects
// formats other than text and json.
func (g *globals) jsonOutput() (bool, error) {
	switch g.format {
	case "", "text":
		return false, nil
	case "json":
		return true, nil
	}
	return false, fmt.Errorf("unknown --format %q (want text or json)", g.format)
}

// newClient returns a kgo client seeded from --brokers with extra options.
func (g *globals) newClient(opts ...kgo.Opt) (*kgo.Client, error) {
	seeds := g.seedBrokers()
	if len(seeds) == 0 {
		return nil, fmt.Errorf("no brokers given (use --brokers or SLUICE_BROKERS)")
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("create client: %w", err)
	}
	return cl, nil
}

// newAdmin returns an admin client and a context bounded by adminTimeout;
// the caller calls the returned function when done.
func (g *globals) newAdmin(cmd *cobra.Command) (*kadm.Client, context.Context, func(), error) {
	cl, err := g.newClient()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), adminTimeout)
	return kadm.NewClient(cl), ctx, func() { cancel(); cl.Close() }, nil
}

// adminRunE is the RunE of a command that works through kadm: it rejects an
// unknown --format, opens an admin client with a context bounded by
// adminTimeout, runs fn and closes the client.
func (g *globals) adminRunE(fn func(ctx context.Context, cmd *cobra.Command, args []string, adm *kadm.Client, asJSON bool) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		asJSON, err := g.jsonOutput()
		if err != nil {
			return err
		}
		adm, ctx, done, err := g.newAdmin(cmd)
		if err != nil {
			return err
		}
		defer done()
		return fn(ctx, cmd, args, adm, asJSON)
	}
}

// newTable returns a tabwriter that aligns columns and prints the upper-case
// header; the caller adds rows with tableRow and calls Flush.
func newTable(w io.Writer, headers ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(headers) > 0 {
		tableRow(tw, strings.ToUpper(strings.Join(headers, "\t")))
	}
	return tw
}

// tableRow writes one tab-separated row of a table.
func tableRow(w io.Writer, cols ...any) {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = fmt.Sprint(c)
	}
	fmt.Fprintln(w, strings.Join(parts, "\t"))
}

// writeJSON prints v as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// errText renders a per-resource error from kadm (an error plus the
// broker's optional message) as one line; empty when err is nil.
func errText(err error, msg string) string {
	if err == nil {
		return ""
	}
	if msg != "" && !strings.Contains(err.Error(), msg) {
		return err.Error() + " (" + msg + ")"
	}
	return err.Error()
}

// parseKV splits "key=value"; the value may itself contain '='.
func parseKV(s string) (string, string, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return "", "", fmt.Errorf("%q is not key=value", s)
	}
	return k, v, nil
}

// int32sString prints replica lists as [1 2 3].
func int32sString(is []int32) string {
	return fmt.Sprint(is)
}

// resultStatus is the per-topic outcome of create, delete, alter-config and
// add-partitions, printed as a TOPIC/STATUS table or as JSON.
type resultStatus struct {
	Topic string `json:"topic"`
	Error string `json:"error,omitempty"`
}

// printStatuses writes the outcomes and returns an error naming how many
// failed, so the process exits non-zero when any did.
func printStatuses(cmd *cobra.Command, g *globals, what string, rs []resultStatus) error {
	asJSON, err := g.jsonOutput()
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	if asJSON {
		if rs == nil {
			rs = []resultStatus{}
		}
		if err := writeJSON(w, rs); err != nil {
			return err
		}
	} else {
		tw := newTable(w, "topic", "status")
		for _, r := range rs {
			status := "OK"
			if r.Error != "" {
				status = r.Error
			}
			tableRow(tw, r.Topic, status)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	failed := 0
	for _, r := range rs {
		if r.Error != "" {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%s failed for %d of %d topics", what, failed, len(rs))
	}
	return nil
}
