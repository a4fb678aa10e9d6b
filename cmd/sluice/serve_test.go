package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestServeSettingsPrecedence checks where serve's settings come from: a
// flag beats SLUICE_* which beats the --config file which beats the default.
func TestServeSettingsPrecedence(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "sluice.yaml")
	yaml := "data-dir: /from/file\nkafka-addr: 127.0.0.1:1111\nnode-id: 7\nset:\n  num.partitions: 3\n"
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SLUICE_KAFKA_ADDR", "127.0.0.1:2222")
	f := &serveFlags{}
	cmd := serveCmdWith(f)
	if err := cmd.ParseFlags([]string{"--config", cfgFile, "--http-addr", "127.0.0.1:3333"}); err != nil {
		t.Fatal(err)
	}
	if err := f.resolve(cmd.Flags()); err != nil {
		t.Fatal(err)
	}
	if f.dataDir != "/from/file" || f.kafkaAddr != "127.0.0.1:2222" || f.httpAddr != "127.0.0.1:3333" || f.nodeID != 7 || f.raftAddr != "127.0.0.1:7947" {
		t.Fatalf("resolved %+v", *f)
	}
	bc, err := f.brokerConfig(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bc.NumPartitions != 3 {
		t.Fatalf("num.partitions from the file's set map = %d", bc.NumPartitions)
	}
}

// TestServeSettingsErrors checks that bad settings are refused with a
// message naming them.
func TestServeSettingsErrors(t *testing.T) {
	for _, tc := range []struct {
		yaml, env, want string
		sets            []string
	}{
		{yaml: "no-such-flag: 1\n", want: `unknown setting "no-such-flag"`},
		{yaml: "node-id: abc\n", want: "node-id"},
		{env: "abc", want: "SLUICE_NODE_ID"},
		{sets: []string{"num.partitions=0"}, want: "num.partitions"},
		{sets: []string{"log.retention.ms=-5"}, want: "log.retention.ms"},
		{sets: []string{"no.such.config=1"}, want: "unknown broker config"},
		{sets: []string{"missing-equals"}, want: "want name=value"},
	} {
		f := &serveFlags{}
		cmd := serveCmdWith(f)
		args := []string{}
		if tc.yaml != "" {
			path := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(path, []byte(tc.yaml), 0o644)
			args = append(args, "--config", path)
		}
		for _, s := range tc.sets {
			args = append(args, "--set", s)
		}
		if tc.env != "" {
			t.Setenv("SLUICE_NODE_ID", tc.env)
		} else {
			os.Unsetenv("SLUICE_NODE_ID")
		}
		if err := cmd.ParseFlags(args); err != nil {
			t.Fatal(err)
		}
		err := f.resolve(cmd.Flags())
		if err == nil {
			_, err = f.brokerConfig(nil, nil)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one naming %q", tc, err, tc.want)
		}
	}
}

// TestServeClusterSettings checks the cluster flags: a node stays standalone
// (no gossip address) unless --join, --bootstrap-expect > 1 or an explicit
// --gossip-addr asks for a cluster, and the settings come from flags,
// SLUICE_* and the YAML file like the others.
func TestServeClusterSettings(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		env        map[string]string
		args       []string
		gossip     string // want in broker.Config; "" is standalone
		join       []string
		expect     int
		rack       string
	}{
		{name: "default is standalone", expect: 1},
		{name: "join from flags", args: []string{"--join", "10.0.0.1:7946,10.0.0.2:7946", "--rack", "r1"},
			gossip: "127.0.0.1:7946", join: []string{"10.0.0.1:7946", "10.0.0.2:7946"}, expect: 1, rack: "r1"},
		{name: "expect from env", env: map[string]string{"SLUICE_BOOTSTRAP_EXPECT": "3", "SLUICE_GOSSIP_ADDR": "127.0.0.1:9946"},
			gossip: "127.0.0.1:9946", expect: 3},
		{name: "yaml", yaml: "join: [a:1, b:2]\nbootstrap-expect: 3\nrack: east\n",
			gossip: "127.0.0.1:7946", join: []string{"a:1", "b:2"}, expect: 3, rack: "east"},
		{name: "explicit gossip address alone", args: []string{"--gossip-addr", "127.0.0.1:8946"}, gossip: "127.0.0.1:8946", expect: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"SLUICE_BOOTSTRAP_EXPECT", "SLUICE_GOSSIP_ADDR", "SLUICE_JOIN", "SLUICE_RACK"} {
				t.Setenv(k, tc.env[k])
				if tc.env[k] == "" {
					os.Unsetenv(k)
				}
			}
			args := tc.args
			if tc.yaml != "" {
				path := filepath.Join(t.TempDir(), "c.yaml")
				os.WriteFile(path, []byte(tc.yaml), 0o644)
				args = append(args, "--config", path)
			}
			f := &serveFlags{}
			cmd := serveCmdWith(f)
			if err := cmd.ParseFlags(args); err != nil {
				t.Fatal(err)
			}
			if err := f.resolve(cmd.Flags()); err != nil {
				t.Fatal(err)
			}
			bc, err := f.brokerConfig(nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if bc.GossipAddr != tc.gossip || !slices.Equal(bc.Join, tc.join) || bc.BootstrapExpect != tc.expect || bc.Rack != tc.rack {
				t.Fatalf("gossip %q join %q expect %d rack %q", bc.GossipAddr, bc.Join, bc.BootstrapExpect, bc.Rack)
			}
		})
	}
	f := &serveFlags{}
	cmd := serveCmdWith(f)
	if err := cmd.ParseFlags([]string{"--bootstrap-expect", "0"}); err != nil {
		t.Fatal(err)
	}
	if err := f.resolve(cmd.Flags()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.brokerConfig(nil, nil); err == nil || !strings.Contains(err.Error(), "--bootstrap-expect") {
		t.Fatalf("--bootstrap-expect 0: %v", err)
	}
}
