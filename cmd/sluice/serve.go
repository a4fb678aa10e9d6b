package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// serveCmd is replaced by the real server wiring.
func serveCmd() *cobra.Command {
	return &cobra.Command{Use: "serve", RunE: func(*cobra.Command, []string) error { return errors.New("not yet") }}
}
