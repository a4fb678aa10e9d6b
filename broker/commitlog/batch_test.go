package commitlog

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestLogAppendTime(t *testing.T) {
	l := openLog(t, t.TempDir(), smallConfig(), 0, 0)
	defer l.Close()
	appendOne(t, l, makeBatch([][2][]byte{kv("a", "1")}, 100, 0))
	b := makeBatch([][2][]byte{kv("a", "2"), kv("b", "3")}, 50, kgo.CodecLz4)
	SetLogAppendTime(b, 5000)
	if _, err := Validate(b); err != nil {
		t.Fatalf("CRC not recomputed: %v", err)
	}
	appendOne(t, l, b)
	if o, ts, ok, _ := l.OffsetForTimestamp(101); !ok || o != 1 || ts != 5000 {
		t.Fatalf("got %d@%d %v", o, ts, ok)
	}
	if o, ts, _ := l.MaxTimestamp(); o != 1 || ts != 5000 {
		t.Fatalf("max %d@%d", o, ts)
	}
}

func TestSplitBatches(t *testing.T) {
	a := makeBatch([][2][]byte{kv("a", "1")}, 1, 0)
	b := makeBatch([][2][]byte{kv("b", "2"), kv("c", "3")}, 2, kgo.CodecSnappy)
	var n int
	if err := SplitBatches(append(append([]byte{}, a...), b...), func([]byte, Header) error { n++; return nil }); err != nil || n != 2 {
		t.Fatalf("split: %v, %d batches", err, n)
	}
	bad := append(append([]byte{}, a...), b[:len(b)-1]...)
	if err := SplitBatches(bad, func([]byte, Header) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("torn: %v", err)
	}
	old := append([]byte{}, a...)
	old[offMagic] = 1
	if err := SplitBatches(old, func([]byte, Header) error { return nil }); !errors.Is(err, ErrUnsupportedMag) {
		t.Fatalf("magic 1: %v", err)
	}
	flipped := append([]byte{}, b...)
	flipped[len(flipped)-1] ^= 1
	if err := SplitBatches(flipped, func([]byte, Header) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("crc: %v", err)
	}
}
