package meta

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestHCLogAdapter(t *testing.T) {
	var buf bytes.Buffer
	l := newHCLog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l.Info("elected", "term", 2)
	l.Debug("chatter")
	l.Named("net").With("peer", "x").Warn("slow", "ms", 300)
	l.Error("failed", "error", "boom")
	l.StandardLogger(nil).Print("from std")
	l.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Info}).Print("std info")

	out := buf.String()
	for _, want := range []string{
		"level=WARN msg=slow peer=x component=raft.net ms=300",
		"level=ERROR msg=failed component=raft error=boom",
		`level=WARN msg="from std"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	for _, quiet := range []string{"elected", "chatter", "std info"} {
		if strings.Contains(out, quiet) {
			t.Errorf("%q logged:\n%s", quiet, out)
		}
	}
}
