package main

import (
	"os"
	"path/filepath"
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
