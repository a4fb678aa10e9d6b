// Package e2e drives the real sluice binary as a subprocess: crash, restart
// and CLI tests that need a process to kill.
package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "sluice")
	build := exec.Command("go", "build", "-o", binary, "../../cmd/sluice")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build sluice:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// node is one `sluice serve` process with fixed ports and data dir, so it
// can be killed and started again on the same state.
type node struct {
	t       *testing.T
	dir     string
	kafka   string
	http    string
	raft    string
	extra   []string
	cmd     *exec.Cmd
	logPath string
}

// freePort returns a loopback address nothing listens on, with a port
// below Linux's ephemeral range (32768-60999): a port from that range
// (what ":0" hands out) can be taken by an outgoing connection between
// this check and the node binding it, which then fails to start. It never
// hands out a port twice: a cluster's ports are all picked before its
// first node binds any, so a repeat would pass the check and then clash.
var (
	portsMu   sync.Mutex
	portsUsed = map[int]bool{}
)

func freePort(t *testing.T) string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		port := 20000 + rand.IntN(12000)
		if portsUsed[port] {
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		l.Close()
		portsUsed[port] = true
		return addr
	}
	t.Fatal("no free port in 20000-31999")
	return ""
}

func newNode(t *testing.T, extra ...string) *node {
	dir := t.TempDir()
	n := &node{t: t, dir: dir, kafka: freePort(t), http: freePort(t), raft: freePort(t), extra: extra,
		logPath: filepath.Join(dir, "sluice.log")}
	t.Cleanup(func() {
		if n.cmd != nil && n.cmd.ProcessState == nil {
			n.cmd.Process.Kill()
			n.cmd.Wait()
		}
		if t.Failed() {
			if log, err := os.ReadFile(n.logPath); err == nil {
				t.Logf("node log:\n%s", tail(string(log), 4000))
			}
		}
	})
	return n
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// start launches the process and waits until the Kafka port answers.
func (n *node) start() time.Duration {
	n.t.Helper()
	args := append([]string{"serve", "--data-dir", filepath.Join(n.dir, "data"), "--kafka-addr", n.kafka,
		"--http-addr", n.http, "--raft-addr", n.raft}, n.extra...)
	n.cmd = exec.Command(binary, args...)
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.t.Fatal(err)
	}
	defer logf.Close()
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	begin := time.Now()
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", n.kafka, 200*time.Millisecond); err == nil {
			c.Close()
			return time.Since(begin)
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.t.Fatalf("node did not open %s within 30s", n.kafka)
	return 0
}

// kill sends SIGKILL: no flush, no checkpoint, no clean shutdown.
func (n *node) kill() {
	n.t.Helper()
	n.cmd.Process.Signal(syscall.SIGKILL)
	n.cmd.Wait()
}

// stop sends SIGTERM and waits for a clean exit.
func (n *node) stop() {
	n.t.Helper()
	n.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- n.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			n.t.Fatalf("clean shutdown failed: %v", err)
		}
	case <-time.After(30 * time.Second):
		// A goroutine dump in the node's log shows what hung.
		n.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			n.cmd.Process.Kill()
		}
		if log, err := os.ReadFile(n.logPath); err == nil {
			n.t.Logf("node log (with the goroutine dump):\n%s", tail(string(log), 60000))
		}
		n.t.Fatal("node did not stop within 30s of SIGTERM")
	}
}

// cli runs a sluice client subcommand against the node.
func (n *node) cli(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, binary, append(args, "--brokers", n.kafka)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
