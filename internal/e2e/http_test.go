package e2e

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHealthAndMetrics checks /healthz and that /metrics counts what was
// produced.
func TestHealthAndMetrics(t *testing.T) {
	n := newNode(t)
	n.start()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get("http://" + n.http + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		return string(body)
	}
	if h := get("/healthz"); !strings.Contains(h, `"status":"ok"`) {
		t.Fatalf("healthz = %s", h)
	}
	if out, err := n.cli(ctx, "a\nb\nc\n", "produce", "m"); err != nil {
		t.Fatalf("produce: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^kafka_server_brokertopicmetrics_messagesin_total (\S+)$`).FindStringSubmatch(get("/metrics"))
	if m == nil {
		t.Fatal("messages-in counter missing from /metrics")
	}
	if v, _ := strconv.ParseFloat(m[1], 64); v != 3 {
		t.Fatalf("messages in = %v, want 3", m[1])
	}
}
