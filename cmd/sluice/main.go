// Command sluice is the single Sluice binary: `sluice serve` runs the broker
// (and, in later releases, the registry, Connect worker and UI); every other
// subcommand is an rpk-style client built on franz-go.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// globals holds the flags shared by every client subcommand.
type globals struct {
	brokers string // comma-separated seed brokers (--brokers / SLUICE_BROKERS)
	format  string // text or json
}

func main() {
	g := &globals{}
	root := &cobra.Command{
		Use:           "sluice",
		Short:         "Sluice: a Kafka-compatible streaming platform in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	defBrokers := os.Getenv("SLUICE_BROKERS")
	if defBrokers == "" {
		defBrokers = "127.0.0.1:9092"
	}
	root.PersistentFlags().StringVar(&g.brokers, "brokers", defBrokers, "comma-separated seed brokers (env SLUICE_BROKERS)")
	root.PersistentFlags().StringVar(&g.format, "format", "text", "output format: text or json")

	root.AddCommand(serveCmd())
	for _, add := range clientCommands {
		root.AddCommand(add(g))
	}
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// clientCommands are registered by the files that implement them (topic.go,
// produce.go, ...), so main.go never changes when a command is added.
var clientCommands []func(*globals) *cobra.Command
