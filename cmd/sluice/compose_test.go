package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// No Docker engine runs on the test machines, so the Dockerfile and
// docker-compose.yml are checked against the binary itself: every command
// they run must parse with the real serve command, and the three nodes must
// be able to find each other.

type composeFile struct {
	Services map[string]struct {
		Hostname string   `yaml:"hostname"`
		Command  []string `yaml:"command"`
		Ports    []string `yaml:"ports"`
	} `yaml:"services"`
}

// parseServe parses a serve command line as `sluice serve` would, without
// running it, and returns the resolved flags.
func parseServe(t *testing.T, args []string) *serveFlags {
	t.Helper()
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("command %q does not start with serve", args)
	}
	f := &serveFlags{}
	cmd := serveCmdWith(f)
	if err := cmd.ParseFlags(args[1:]); err != nil {
		t.Fatalf("sluice %s: %v", strings.Join(args, " "), err)
	}
	if rest := cmd.Flags().Args(); len(rest) > 0 {
		t.Fatalf("sluice %s: stray arguments %q", strings.Join(args, " "), rest)
	}
	if err := f.resolve(cmd.Flags()); err != nil {
		t.Fatalf("sluice %s: %v", strings.Join(args, " "), err)
	}
	return f
}

func TestDockerCompose(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Services) != 3 {
		t.Fatalf("%d services, want 3", len(c.Services))
	}
	ids := map[int32]string{}
	gossip := map[string]string{} // gossip address → service
	flags := map[string]*serveFlags{}
	for name, s := range c.Services {
		f := parseServe(t, s.Command)
		flags[name] = f
		if other, dup := ids[f.nodeID]; dup {
			t.Errorf("%s and %s both use node id %d", name, other, f.nodeID)
		}
		ids[f.nodeID] = name
		if f.expect != len(c.Services) || !f.clusterEnabled {
			t.Errorf("%s: bootstrap-expect %d (clustered %v), want %d", name, f.expect, f.clusterEnabled, len(c.Services))
		}
		if !strings.HasPrefix(f.gossipAddr, s.Hostname+":") || !strings.HasPrefix(f.raftAddr, s.Hostname+":") {
			t.Errorf("%s: gossip %s and raft %s must be on its hostname %s", name, f.gossipAddr, f.raftAddr, s.Hostname)
		}
		if !strings.HasPrefix(f.kafkaAddr, "0.0.0.0:") || !strings.HasPrefix(f.httpAddr, "0.0.0.0:") {
			t.Errorf("%s: Kafka %s and HTTP %s must listen beyond loopback", name, f.kafkaAddr, f.httpAddr)
		}
		gossip[f.gossipAddr] = name
		// The advertised port is the one the host publishes for Kafka.
		_, port, _ := strings.Cut(f.advertisedAddr, ":")
		if !slices.Contains(s.Ports, port+":9092") {
			t.Errorf("%s: advertises %s but publishes %v", name, f.advertisedAddr, s.Ports)
		}
	}
	for name, f := range flags {
		for _, j := range f.join {
			if peer, ok := gossip[j]; !ok || peer == name {
				t.Errorf("%s joins %s, which is no other node's gossip address", name, j)
			}
		}
		if len(f.join) != len(c.Services)-1 {
			t.Errorf("%s joins %v; want every other node", name, f.join)
		}
	}
}

func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(data)
	build := regexp.MustCompile(`(?m)^RUN .*go build .*-o (\S+) (\./\S+)$`).FindStringSubmatch(df)
	if build == nil {
		t.Fatal("no go build step")
	}
	if pkg := filepath.Join("..", "..", build[2]); !isMainPackage(t, pkg) {
		t.Fatalf("the build step compiles %s, which is not the sluice main package", build[2])
	}
	if !strings.Contains(df, "COPY --from=build "+build[1]+" /usr/local/bin/sluice") {
		t.Fatalf("the binary built as %s is not what the image installs", build[1])
	}
	var entry, cmd []string
	for _, line := range strings.Split(df, "\n") {
		if v, ok := strings.CutPrefix(line, "ENTRYPOINT "); ok {
			if err := json.Unmarshal([]byte(v), &entry); err != nil {
				t.Fatalf("ENTRYPOINT: %v", err)
			}
		}
		if v, ok := strings.CutPrefix(line, "CMD "); ok {
			if err := json.Unmarshal([]byte(v), &cmd); err != nil {
				t.Fatalf("CMD: %v", err)
			}
		}
	}
	if !slices.Equal(entry, []string{"sluice"}) {
		t.Fatalf("ENTRYPOINT %q, want [sluice]", entry)
	}
	f := parseServe(t, cmd)
	if !strings.HasPrefix(f.kafkaAddr, "0.0.0.0:") || f.dataDir != "/var/lib/sluice/data" {
		t.Fatalf("default CMD: kafka %s, data %s", f.kafkaAddr, f.dataDir)
	}
}

func isMainPackage(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "main.go"))
	return err == nil && strings.Contains("\n"+string(b), "\npackage main\n")
}
