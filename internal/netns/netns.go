// Package netns builds a throwaway test network out of Linux network
// namespaces: one bridge in the root namespace, one namespace per host with
// a veth into the bridge, and tc filters that cut chosen host pairs apart
// while every host stays reachable from the root namespace (the test's
// clients). It drives the ip and tc commands (iproute2) and needs root;
// New skips the test otherwise.
//
// A cut drops packets silently, as a broken switch would: new connections
// time out instead of being refused, established ones stall. Each host's
// eth0 carries a clsact qdisc; Cut adds, on both hosts' eth0 egress, a u32
// filter matching the peer's address whose action redirects the packet into
// a sink veth pair (cut0/cut1) inside the namespace, where its destination
// MAC is nobody's and the stack discards it. That needs only cls_u32 and
// act_mirred; kernels built without act_gact (tc's "drop") work too.
package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockDir holds one lock file per /24 in use; a process holds the flock of
// its subnet for the network's lifetime, so a crashed run's leftovers are
// recognisable (their lock is free) and concurrent test processes never
// share a subnet.
const lockDir = "/run/sluice-netns"

// maxHosts bounds New's n: addresses .2 to .(maxHosts+1) of the /24.
const maxHosts = 64

// cmdTimeout bounds every ip or tc invocation.
const cmdTimeout = 15 * time.Second

// Network is a bridge in the root namespace and the hosts plugged into it.
type Network struct {
	t      testing.TB
	subnet int    // X in 10.213.X.0/24
	prefix string // every name this network creates starts with it
	bridge string
	lock   *os.File
	hasBr  bool // the bridge exists
	hosts  []*Host

	mu   sync.Mutex
	cuts map[[2]int]bool // ordered host index pairs currently cut
}

// Host is one network namespace with one address on the bridge.
type Host struct {
	nw    *Network
	index int
	name  string // the namespace's name, as `ip netns` lists it
	ip    string
}

// counter spreads the networks of one process over different subnets.
var counter struct {
	sync.Mutex
	n int
}

// New creates a bridge and n hosts on a /24 of 10.213.0.0/16 that no other
// live process uses, removing what crashed runs left behind. The
// root namespace has .1 on the bridge, host i has .(i+2). Everything is
// removed in t.Cleanup. New skips the test when not root or when ip or tc
// is missing.
func New(t testing.TB, n int) *Network {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netns: network namespaces need root; run the test as root")
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("netns: %s (iproute2) is not installed; scripts/deps.sh installs it", tool)
		}
	}
	if n < 1 || n > maxHosts {
		t.Fatalf("netns: %d hosts; want 1 to %d", n, maxHosts)
	}
	nw := &Network{t: t, cuts: map[[2]int]bool{}}
	if err := nw.claimSubnet(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nw.teardown)
	if err := nw.build(n); err != nil {
		t.Fatal(err)
	}
	return nw
}

// claimSubnet takes the flock of the first free subnet, starting from one
// derived from the pid so parallel processes rarely contend, and clears
// whatever an earlier holder left behind.
func (nw *Network) claimSubnet() error {
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	counter.Lock()
	start := os.Getpid() + 37*counter.n
	counter.n++
	counter.Unlock()
	for i := range 254 {
		x := (start+i)%254 + 1
		f, err := os.OpenFile(filepath.Join(lockDir, fmt.Sprintf("%d.lock", x)), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return fmt.Errorf("netns: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		nw.subnet, nw.lock = x, f
		nw.prefix = subnetPrefix(x)
		nw.bridge = nw.prefix + "br"
		return removeStale(x)
	}
	return errors.New("netns: all 254 subnets of 10.213.0.0/16 are in use")
}

func subnetPrefix(x int) string { return fmt.Sprintf("sln%d-", x) }

// leftovers lists the namespaces and root-namespace links whose names
// carry a network prefix, by subnet.
func leftovers() (map[int][]string, map[int][]string, error) {
	nss, links := map[int][]string{}, map[int][]string{}
	add := func(m map[int][]string, name string) {
		var x int
		if _, err := fmt.Sscanf(name, "sln%d-", &x); err == nil && strings.HasPrefix(name, subnetPrefix(x)) {
			m[x] = append(m[x], name)
		}
	}
	out, err := run("ip", "netns", "list")
	if err != nil {
		return nil, nil, err
	}
	for _, line := range strings.Split(out, "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		add(nss, name)
	}
	out, err = run("ip", "-o", "link", "show")
	if err != nil {
		return nil, nil, err
	}
	for _, line := range strings.Split(out, "\n") {
		// "7: sln12-v0@if2: <BROADCAST,..." names the link in field 2.
		if fields := strings.Fields(line); len(fields) >= 2 {
			name, _, _ := strings.Cut(strings.TrimSuffix(fields[1], ":"), "@")
			add(links, name)
		}
	}
	return nss, links, nil
}

// removeStale deletes what a crashed run left on subnet x (ours now) and
// on every other subnet whose lock is free: its holder is gone.
func removeStale(x int) error {
	nss, links, err := leftovers()
	if err != nil {
		return err
	}
	subnets := map[int]bool{}
	for y := range nss {
		subnets[y] = true
	}
	for y := range links {
		subnets[y] = true
	}
	for y := range subnets {
		if y != x {
			f, err := os.OpenFile(filepath.Join(lockDir, fmt.Sprintf("%d.lock", y)), os.O_CREATE|os.O_RDWR, 0o644)
			if err != nil {
				return fmt.Errorf("netns: %w", err)
			}
			if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
				f.Close() // in use
				continue
			}
			defer f.Close()
		}
		for _, name := range nss[y] {
			if _, err := run("ip", "netns", "del", name); err != nil {
				return err
			}
		}
		for _, name := range links[y] {
			// A stale namespace's veth ends vanish with it, a moment later.
			if _, err := run("ip", "link", "del", name); err != nil && linkExists(name) {
				return err
			}
		}
	}
	return nil
}

func linkExists(name string) bool {
	_, err := run("ip", "link", "show", "dev", name)
	return err == nil
}

func (nw *Network) addr(last int) string { return fmt.Sprintf("10.213.%d.%d", nw.subnet, last) }

func (nw *Network) build(n int) error {
	if _, err := run("ip", "link", "add", nw.bridge, "type", "bridge"); err != nil {
		return err
	}
	nw.hasBr = true
	if _, err := run("ip", "addr", "add", nw.addr(1)+"/24", "dev", nw.bridge); err != nil {
		return err
	}
	if _, err := run("ip", "link", "set", nw.bridge, "up"); err != nil {
		return err
	}
	for i := range n {
		h := &Host{nw: nw, index: i, name: fmt.Sprintf("%sh%d", nw.prefix, i), ip: nw.addr(i + 2)}
		if _, err := run("ip", "netns", "add", h.name); err != nil {
			return err
		}
		nw.hosts = append(nw.hosts, h)
		veth := fmt.Sprintf("%sv%d", nw.prefix, i)
		steps := [][]string{
			{"ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.name},
			{"ip", "link", "set", veth, "master", nw.bridge, "up"},
			{"ip", "-n", h.name, "addr", "add", h.ip + "/24", "dev", "eth0"},
			{"ip", "-n", h.name, "link", "set", "eth0", "up"},
			{"ip", "-n", h.name, "link", "set", "lo", "up"},
			{"ip", "-n", h.name, "link", "add", "cut0", "type", "veth", "peer", "name", "cut1"},
			{"ip", "-n", h.name, "link", "set", "cut0", "up"},
			{"ip", "-n", h.name, "link", "set", "cut1", "up"},
			{"tc", "-n", h.name, "qdisc", "add", "dev", "eth0", "clsact"},
		}
		for _, s := range steps {
			if _, err := run(s[0], s[1:]...); err != nil {
				return err
			}
		}
	}
	return nil
}

// teardown kills what still runs in the namespaces (processes the test
// started there), deletes them and the bridge, and frees the subnet.
func (nw *Network) teardown() {
	for _, h := range nw.hosts {
		if out, err := run("ip", "netns", "pids", h.name); err == nil {
			for _, f := range strings.Fields(out) {
				var pid int
				if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if _, err := run("ip", "netns", "del", h.name); err != nil {
			nw.t.Errorf("netns teardown: %v", err)
		}
	}
	if nw.hasBr {
		if _, err := run("ip", "link", "del", nw.bridge); err != nil {
			nw.t.Errorf("netns teardown: %v", err)
		}
	}
	if nw.lock != nil {
		nw.lock.Close() // releases the flock
	}
}

// Hosts returns the hosts in index order.
func (nw *Network) Hosts() []*Host { return nw.hosts }

// Host returns host i.
func (nw *Network) Host(i int) *Host { return nw.hosts[i] }

// RootIP is the root namespace's address on the bridge, the one hosts see
// the test's clients come from.
func (nw *Network) RootIP() string { return nw.addr(1) }

// IP is the host's address on the bridge.
func (h *Host) IP() string { return h.ip }

// Name is the namespace's name.
func (h *Host) Name() string { return h.name }

// Index is the host's position in Network.Hosts.
func (h *Host) Index() int { return h.index }

// Command returns a command that runs name inside the host's namespace
// through `ip netns exec`, which executes it in place: the started
// process's pid is the command's own, so signals (SIGSTOP, SIGKILL) reach it.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.name, name}, args...)...)
	// Killed with the test process, should it die without cleaning up
	// (a panic, a -timeout): a namespace left behind is removed by the
	// next New, a process left running in it is not.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

func pair(a, b *Host) [2]int {
	if a.index < b.index {
		return [2]int{a.index, b.index}
	}
	return [2]int{b.index, a.index}
}

// filterPref gives the egress filter dropping traffic to peer a priority
// of its own, so Heal deletes exactly that filter.
func filterPref(peer *Host) string { return fmt.Sprint(100 + peer.index) }

// Cut drops every packet between a and b, both ways; their paths to other
// hosts and to the root namespace stay. Cutting a cut pair does nothing.
func (nw *Network) Cut(a, b *Host) {
	nw.t.Helper()
	if a == b {
		nw.t.Fatalf("netns: cut host %s from itself", a.name)
	}
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if nw.cuts[pair(a, b)] {
		return
	}
	for _, d := range [][2]*Host{{a, b}, {b, a}} {
		from, to := d[0], d[1]
		if _, err := run("tc", "-n", from.name, "filter", "add", "dev", "eth0", "egress", "pref", filterPref(to),
			"protocol", "ip", "u32", "match", "ip", "dst", to.ip+"/32",
			"action", "mirred", "egress", "redirect", "dev", "cut0"); err != nil {
			nw.t.Fatal(err)
		}
	}
	nw.cuts[pair(a, b)] = true
}

// Heal restores the path between a and b. Healing an intact pair does
// nothing.
func (nw *Network) Heal(a, b *Host) {
	nw.t.Helper()
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if !nw.cuts[pair(a, b)] {
		return
	}
	for _, d := range [][2]*Host{{a, b}, {b, a}} {
		from, to := d[0], d[1]
		if _, err := run("tc", "-n", from.name, "filter", "del", "dev", "eth0", "egress", "pref", filterPref(to),
			"protocol", "ip", "u32"); err != nil {
			nw.t.Fatal(err)
		}
	}
	delete(nw.cuts, pair(a, b))
}

// Isolate cuts h from every other host; the root namespace still reaches it.
func (nw *Network) Isolate(h *Host) {
	nw.t.Helper()
	for _, o := range nw.hosts {
		if o != h {
			nw.Cut(h, o)
		}
	}
}

// HealAll restores every cut path.
func (nw *Network) HealAll() {
	nw.t.Helper()
	nw.mu.Lock()
	var cut [][2]int
	for p := range nw.cuts {
		cut = append(cut, p)
	}
	nw.mu.Unlock()
	for _, p := range cut {
		nw.Heal(nw.hosts[p[0]], nw.hosts[p[1]])
	}
}

// run executes an ip or tc command and returns its output; the error
// carries the command line and what it printed.
func run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("netns: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}
