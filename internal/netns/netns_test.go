package netns

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// The test binary doubles as the helper process run inside a namespace:
// with helperEnv set, TestMain runs the helper instead of the tests.
const (
	helperEnv  = "NETNS_TEST_HELPER"
	addrEnv    = "NETNS_TEST_ADDR"
	protoEnv   = "NETNS_TEST_PROTO"
	echoPort   = "7000"
	probeLimit = 800 * time.Millisecond
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "echo":
		echo(os.Getenv(addrEnv))
	case "probe":
		if err := probe(os.Getenv(protoEnv), os.Getenv(addrEnv)); err != nil {
			fmt.Println(err)
			os.Exit(3)
		}
		os.Exit(0)
	case "stream":
		stream(os.Getenv(protoEnv), os.Getenv(addrEnv))
	}
	os.Exit(2)
}

// echo answers on addr over TCP and UDP with what it receives; it prints
// "ready" once both listen and runs until killed.
func echo(addr string) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	go echoUDP(pc)
	fmt.Println("ready")
	echoTCP(l)
}

func echoTCP(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			io.Copy(c, c)
		}()
	}
}

func echoUDP(pc net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		pc.WriteTo(buf[:n], from)
	}
}

// probe sends "ping" to an echo server and wants it back within
// probeLimit: the path works both ways.
func probe(proto, addr string) error {
	c, err := net.DialTimeout(proto, addr, probeLimit)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(probeLimit))
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != "ping" {
		return fmt.Errorf("echo answered %q", buf)
	}
	return nil
}

// stream keeps one connection (one socket, for UDP) to an echo server and
// prints, every 100 ms, "ok" when a ping came back within 300 ms and
// "stall" otherwise.
func stream(proto, addr string) {
	c, err := net.DialTimeout(proto, addr, time.Second)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	buf := make([]byte, 4)
	for {
		if _, err := c.Write([]byte("ping")); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := io.ReadFull(c, buf); err != nil {
			fmt.Println("stall")
		} else {
			fmt.Println("ok")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// helper starts the test binary in h's namespace in the given mode.
func helper(h *Host, mode string, env ...string) *exec.Cmd {
	cmd := h.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{helperEnv + "=" + mode}, env...)...)
	return cmd
}

// startEcho runs an echo helper on h's address and waits until it listens.
func startEcho(t *testing.T, h *Host) {
	t.Helper()
	cmd := helper(h, "echo", addrEnv+"="+net.JoinHostPort(h.IP(), echoPort))
	lines := startLines(t, cmd)
	select {
	case l := <-lines:
		if l != "ready" {
			t.Fatalf("echo on %s: %s", h.Name(), l)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("echo on %s did not start within 10s", h.Name())
	}
}

// startLines starts cmd and delivers its stdout lines; cmd is killed at
// the end of the test.
func startLines(t *testing.T, cmd *exec.Cmd) <-chan string {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // nobody reads any more
			}
		}
	}()
	return lines
}

// startRootEcho runs an echo server in the test process, in the root
// namespace, on the bridge address.
func startRootEcho(t *testing.T, nw *Network) {
	t.Helper()
	addr := net.JoinHostPort(nw.RootIP(), echoPort)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(); pc.Close() })
	go echoTCP(l)
	go echoUDP(pc)
}

// reach probes the echo server at ip from host from (nil: the root
// namespace) over proto.
func reach(from *Host, proto, ip string) error {
	addr := net.JoinHostPort(ip, echoPort)
	if from == nil {
		return probe(proto, addr)
	}
	out, err := helper(from, "probe", protoEnv+"="+proto, addrEnv+"="+addr).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// expectPaths probes, over TCP and UDP, every host to every other host and
// to the root namespace, and the root namespace to every host, all at once:
// a path between two hosts must work unless cut says it is cut, a path from
// or to the root namespace always.
func expectPaths(t *testing.T, nw *Network, cut func(a, b *Host) bool) {
	t.Helper()
	type path struct {
		from, to *Host // nil: the root namespace
		proto    string
	}
	var paths []path
	for _, proto := range []string{"tcp", "udp"} {
		for _, a := range nw.Hosts() {
			paths = append(paths, path{nil, a, proto}, path{a, nil, proto})
			for _, b := range nw.Hosts() {
				if a != b {
					paths = append(paths, path{a, b, proto})
				}
			}
		}
	}
	name := func(h *Host) string {
		if h == nil {
			return "root"
		}
		return fmt.Sprintf("h%d", h.Index())
	}
	var wg sync.WaitGroup
	errs := make([]error, len(paths))
	for i, p := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ip := nw.RootIP()
			if p.to != nil {
				ip = p.to.IP()
			}
			errs[i] = reach(p.from, p.proto, ip)
		}()
	}
	wg.Wait()
	for i, p := range paths {
		want := p.from == nil || p.to == nil || !cut(p.from, p.to)
		if got := errs[i] == nil; got != want {
			t.Errorf("%s %s -> %s: reachable %v, want %v (%v)", p.proto, name(p.from), name(p.to), got, want, errs[i])
		}
	}
}

func newEchoNetwork(t *testing.T, n int) *Network {
	nw := New(t, n)
	for _, h := range nw.Hosts() {
		startEcho(t, h)
	}
	startRootEcho(t, nw)
	return nw
}

func noCuts(a, b *Host) bool { return false }

// TestCutAndHeal: a cut pair loses TCP and UDP both ways while every other
// path, from and to the root namespace included, works; Heal restores it.
func TestCutAndHeal(t *testing.T) {
	nw := newEchoNetwork(t, 3)
	h0, h1 := nw.Host(0), nw.Host(1)
	expectPaths(t, nw, noCuts)

	nw.Cut(h0, h1)
	nw.Cut(h1, h0) // already cut: no-op
	expectPaths(t, nw, func(a, b *Host) bool { return pair(a, b) == pair(h0, h1) })

	nw.Heal(h1, h0)
	nw.Heal(h0, h1) // already healed: no-op
	expectPaths(t, nw, noCuts)
}

// TestIsolateAndHealAll: an isolated host reaches no other host, the others
// still reach each other, the root namespace reaches all; HealAll restores
// everything.
func TestIsolateAndHealAll(t *testing.T) {
	nw := newEchoNetwork(t, 3)
	h0 := nw.Host(0)
	nw.Isolate(h0)
	expectPaths(t, nw, func(a, b *Host) bool { return a == h0 || b == h0 })
	nw.HealAll()
	expectPaths(t, nw, noCuts)
}

// TestCutStallsEstablishedConnection: a cut drops the packets of a TCP
// connection opened before it, silently, so the connection stalls rather
// than breaks, and resumes after Heal.
func TestCutStallsEstablishedConnection(t *testing.T) { testCutStalls(t, "tcp", 10*time.Second) }

// TestCutStallsUDPSocket: the same for a UDP socket, as memberlist's
// probes use; it resumes at once after Heal.
func TestCutStallsUDPSocket(t *testing.T) { testCutStalls(t, "udp", time.Second) }

func testCutStalls(t *testing.T, proto string, resume time.Duration) {
	nw := newEchoNetwork(t, 2)
	h0, h1 := nw.Host(0), nw.Host(1)
	lines := startLines(t, helper(h0, "stream", protoEnv+"="+proto, addrEnv+"="+net.JoinHostPort(h1.IP(), echoPort)))
	await := func(want string, within time.Duration) {
		t.Helper()
		deadline := time.After(within)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("stream helper ended waiting for %q", want)
				}
				if l == want {
					return
				}
				if l != "ok" && l != "stall" {
					t.Fatalf("stream helper: %s", l)
				}
			case <-deadline:
				t.Fatalf("no %q within %s", want, within)
			}
		}
	}
	await("ok", 5*time.Second)
	nw.Cut(h0, h1)
	await("stall", 3*time.Second)
	// Still stalled a second later: nothing gets through.
	time.Sleep(time.Second)
	for len(lines) > 0 {
		<-lines
	}
	await("stall", time.Second)
	nw.Heal(h0, h1)
	await("ok", resume) // for TCP, the retransmission backoff decides when
}

// TestTwoNetworks: two networks of one test live side by side on their own
// subnets and names.
func TestTwoNetworks(t *testing.T) {
	a, b := newEchoNetwork(t, 1), newEchoNetwork(t, 1)
	if a.subnet == b.subnet || a.Host(0).Name() == b.Host(0).Name() {
		t.Fatalf("networks share subnet %d / name %s", a.subnet, a.Host(0).Name())
	}
	expectPaths(t, a, noCuts)
	expectPaths(t, b, noCuts)
}

// TestRemovesStaleLeftovers: a network whose process died without cleaning
// up (simulated by dropping the lock without teardown) is removed by the
// next New that claims its subnet.
func TestRemovesStaleLeftovers(t *testing.T) {
	stale := &Network{t: t, cuts: map[[2]int]bool{}}
	if err := stale.claimSubnet(); err != nil {
		t.Fatal(err)
	}
	if err := stale.build(2); err != nil {
		stale.teardown()
		t.Fatal(err)
	}
	stale.lock.Close() // as a crash would

	fresh := &Network{t: t, cuts: map[[2]int]bool{}}
	counter.Lock()
	counter.n-- // start the search where the stale network's did
	counter.Unlock()
	if err := fresh.claimSubnet(); err != nil {
		t.Fatal(err)
	}
	defer fresh.teardown()
	if fresh.subnet != stale.subnet {
		stale.teardown()
		t.Skipf("claimed subnet %d, not the stale %d (another process took it)", fresh.subnet, stale.subnet)
	}
	out, err := run("ip", "netns", "list")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, fresh.prefix) {
		t.Fatalf("stale namespaces survive:\n%s", out)
	}
	if _, err := run("ip", "link", "show", stale.bridge); err == nil {
		t.Fatalf("stale bridge %s survives", stale.bridge)
	}
	if err := fresh.build(2); err != nil {
		t.Fatal(err)
	}
}
