package broker_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sluice-io/sluice/internal/testbroker"
)

// TestGroupKcat consumes with kcat's balanced consumer (-G, librdkafka's
// group protocol) to the end of a 6-partition topic, checks its commits,
// and that a second run of the same group reads only what came since.
func TestGroupKcat(t *testing.T) {
	kcatPath(t)
	b := testbroker.Start(t)
	adm, _ := compatAdmin(t, b.Addr())
	const topic, group, n = "grp-kcat", "g-kcat", 600
	compatCreateTopic(t, adm, topic, groupTestPartitions, nil)
	groupProduce(t, b.Addr(), topic, 0, n)
	consume := func() []string {
		out := kcatRun(t, nil, "-b", b.Addr(), "-G", group, topic, "-X", "auto.offset.reset=earliest", "-e", "-q", "-f", `%s\n`,
			"-X", "session.timeout.ms=6000", "-X", "auto.commit.interval.ms=100")
		return strings.Fields(string(bytes.TrimSpace(out)))
	}
	got := consume()
	seen := map[string]bool{}
	for _, v := range got {
		seen[v] = true
	}
	if len(seen) != n {
		t.Fatalf("kcat -G read %d distinct records (%d lines), want %d", len(seen), len(got), n)
	}
	ctx := compatCtx(t, 30*time.Second)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(e kadm.ListedOffset) {
		if c, ok := committed.Lookup(e.Topic, e.Partition); !ok || c.At != e.Offset {
			t.Errorf("%s/%d: committed %d (found %v), end %d", e.Topic, e.Partition, c.At, ok, e.Offset)
		}
	})
	groupProduce(t, b.Addr(), topic, n, n+60)
	again := consume()
	if len(again) != 60 {
		t.Errorf("second kcat -G run read %d records, want the 60 new ones", len(again))
	}
	for _, v := range again {
		if seen[v] {
			t.Errorf("second run re-read %s", v)
			break
		}
	}
}
