package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"
)

// newKfake starts an in-process kfake cluster and returns its seed brokers.
func newKfake(t *testing.T, opts ...kfake.Opt) string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}

// newTestRoot builds the root command the way main does, with every registered
// client command, so flags and --format behave as in the real binary.
func newTestRoot(g *globals) *cobra.Command {
	root := &cobra.Command{Use: "sluice", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().StringVar(&g.brokers, "brokers", "", "")
	root.PersistentFlags().StringVar(&g.format, "format", "text", "")
	for _, add := range clientCommands {
		root.AddCommand(add(g))
	}
	return root
}

type cliResult struct {
	out, errOut string
	err         error
}

// sluiceRunCtx runs `sluice --brokers brokers args...` with stdin, capturing output.
func sluiceRunCtx(ctx context.Context, brokers, stdin string, args ...string) cliResult {
	root := newTestRoot(&globals{})
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append([]string{"--brokers", brokers}, args...))
	err := root.ExecuteContext(ctx)
	return cliResult{out.String(), errOut.String(), err}
}

// sluiceRun is sluiceRunCtx with a one-minute limit, failing the test on error.
func sluiceRun(t *testing.T, brokers, stdin string, args ...string) string {
	t.Helper()
	r := sluiceTry(t, brokers, stdin, args...)
	if r.err != nil {
		t.Fatalf("sluice %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.err, r.out, r.errOut)
	}
	return r.out
}

// sluiceTry runs a command that may fail, with a one-minute limit.
func sluiceTry(t *testing.T, brokers, stdin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return sluiceRunCtx(ctx, brokers, stdin, args...)
}
