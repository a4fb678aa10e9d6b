package broker_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/testbroker"
)

// kcatPath finds kcat; CI installs it, so a missing kcat fails the test.
func kcatPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat is not in PATH (%v): run scripts/deps.sh to install it", err)
	}
	return p
}

// kcatRun runs kcat with args and stdin and returns its standard output.
func kcatRun(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	ctx := compatCtx(t, 2*time.Minute)
	cmd := exec.CommandContext(ctx, kcatPath(t), args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return stdout.Bytes()
}

func kcatValue(i int) string { return fmt.Sprintf("value-%d-%0100d", i, i) }

// TestCompatKcat produces with kcat (librdkafka) under each codec, consumes
// back with kcat and checks every key, value, offset, header and timestamp.
func TestCompatKcat(t *testing.T) {
	kcatPath(t)
	b := testbroker.Start(t)
	adm, _ := compatAdmin(t, b.Addr())
	n := compatCount()
	var input bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&input, "key-%d:%s\n", i, kcatValue(i))
	}
	for _, c := range compatCodecs {
		t.Run(c.name, func(t *testing.T) {
			topic := "kcat-" + c.name
			compatCreateTopic(t, adm, topic, 1, nil)
			before := time.Now().UnixMilli()
			kcatRun(t, input.Bytes(), "-P", "-b", b.Addr(), "-t", topic, "-z", c.name, "-K:",
				"-H", "codec="+c.name, "-H", "h2=", "-X", "acks=all", "-X", "linger.ms=5")
			after := time.Now().UnixMilli()
			if got := compatEndOffset(t, adm, topic, 0); got != int64(n) {
				t.Fatalf("end offset after kcat produced %d records: %d", n, got)
			}
			out := kcatRun(t, nil, "-C", "-b", b.Addr(), "-t", topic, "-o", "beginning", "-e", "-q",
				"-f", `%k\t%s\t%o\t%T\t%h\n`)
			sc := bufio.NewScanner(bytes.NewReader(out))
			sc.Buffer(make([]byte, 1<<16), 1<<20)
			i := 0
			for ; sc.Scan(); i++ {
				f := strings.Split(sc.Text(), "\t")
				if len(f) != 5 {
					t.Fatalf("line %d: %q", i, sc.Text())
				}
				ts, _ := strconv.ParseInt(f[3], 10, 64)
				switch {
				case f[0] != fmt.Sprintf("key-%d", i) || f[1] != kcatValue(i):
					t.Fatalf("record %d: key %q value %.20q", i, f[0], f[1])
				case f[2] != strconv.Itoa(i):
					t.Fatalf("record %d at offset %s", i, f[2])
				case ts < before || ts > after:
					t.Fatalf("record %d: timestamp %d outside the produce window [%d, %d]", i, ts, before, after)
				case f[4] != "codec="+c.name+",h2=":
					t.Fatalf("record %d: headers %q", i, f[4])
				}
			}
			if i != n {
				t.Fatalf("kcat consumed %d records, want %d", i, n)
			}
			if got := compatStoredCodec(t, b.Addr(), topic); got != c.attr {
				t.Errorf("%s: records stored with codec %d, want %d", topic, got, c.attr)
			}
		})
	}
	// librdkafka turns LZ4 on only against brokers that advertise
	// FindCoordinator v0 (rdkafka_feature.c); the lz4 case above proves the
	// effect, this names the cause if it ever regresses.
	if !compatAdvertises(t, adm, 10, 0) {
		t.Error("FindCoordinator v0 is not advertised: kcat -z lz4 would send uncompressed batches")
	}
	t.Run("metadata", func(t *testing.T) { kcatMetadata(t, b.Addr()) })
	t.Run("offset-for-timestamp", func(t *testing.T) { kcatOffsetForTimestamp(t, b.Addr()) })
}

// compatAdvertises reports whether the broker's ApiVersions range for key
// includes version.
func compatAdvertises(t *testing.T, adm *kadm.Client, key, version int16) bool {
	t.Helper()
	vs, err := adm.ApiVersions(compatCtx(t, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	v := vs[1]
	lo, hi, ok := v.KeyVersions(key)
	return ok && lo <= version && version <= hi
}

// kcatMetadata checks kcat -L -J lists the broker and every topic.
func kcatMetadata(t *testing.T, addr string) {
	var md struct {
		ControllerID int32 `json:"controllerid"`
		Brokers      []struct {
			ID   int32  `json:"id"`
			Name string `json:"name"`
		} `json:"brokers"`
		Topics []struct {
			Topic      string `json:"topic"`
			Error      string `json:"error"`
			Partitions []struct {
				Partition int32 `json:"partition"`
				Leader    int32 `json:"leader"`
				Replicas  []struct {
					ID int32 `json:"id"`
				} `json:"replicas"`
			} `json:"partitions"`
		} `json:"topics"`
	}
	out := kcatRun(t, nil, "-L", "-J", "-b", addr)
	if err := json.Unmarshal(out, &md); err != nil {
		t.Fatalf("kcat -L -J output %q: %v", out, err)
	}
	if md.ControllerID != 1 || len(md.Brokers) != 1 || md.Brokers[0].ID != 1 || md.Brokers[0].Name != addr {
		t.Fatalf("brokers %+v controller %d, want broker 1 at %s", md.Brokers, md.ControllerID, addr)
	}
	seen := map[string]bool{}
	for _, tp := range md.Topics {
		seen[tp.Topic] = true
		if tp.Error != "" || len(tp.Partitions) != 1 || tp.Partitions[0].Leader != 1 ||
			len(tp.Partitions[0].Replicas) != 1 || tp.Partitions[0].Replicas[0].ID != 1 {
			t.Errorf("topic %+v", tp)
		}
	}
	for _, c := range compatCodecs {
		if !seen["kcat-"+c.name] {
			t.Errorf("kcat -L does not list topic kcat-%s: %s", c.name, out)
		}
	}
	one := kcatRun(t, nil, "-L", "-b", addr, "-t", "kcat-zstd")
	if !bytes.Contains(one, []byte(`topic "kcat-zstd" with 1 partitions`)) || !bytes.Contains(one, []byte("partition 0, leader 1")) {
		t.Errorf("kcat -L -t kcat-zstd:\n%s", one)
	}
}

// kcatOffsetForTimestamp produces records with known CreateTime timestamps
// (base + 10*i, in several batches) with franz-go and asks kcat -Q for the
// offsets of timestamps before, inside and after them.
func kcatOffsetForTimestamp(t *testing.T, addr string) {
	const topic, n, base = "kcat-times", 1000, int64(1_700_000_000_000)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := compatCtx(t, time.Minute)
	for batch := 0; batch < 10; batch++ {
		var rs []*kgo.Record
		for i := batch * n / 10; i < (batch+1)*n/10; i++ {
			r := testRecord(topic, i)
			r.Timestamp = time.UnixMilli(base + 10*int64(i))
			rs = append(rs, r)
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		ts   int64
		want int64
	}{
		{base - 1000, 0}, {base, 0}, {base + 1, 1}, {base + 10*555, 555}, {base + 10*555 - 3, 555},
		{base + 10*100, 100}, {base + 10*99 + 1, 100}, {base + 10*(n-1), n - 1},
		{base + 10*n, -1}, {-2, 0}, {-1, n},
	} {
		out := kcatRun(t, nil, "-Q", "-b", addr, "-t", fmt.Sprintf("%s:0:%d", topic, tc.ts))
		want := fmt.Sprintf("%s [0] offset %d", topic, tc.want)
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("kcat -Q for timestamp %d: %q, want %q", tc.ts, got, want)
		}
	}
}
