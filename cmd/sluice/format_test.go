package main

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestRecordFormat(t *testing.T) {
	r := &kgo.Record{
		Topic: "tp", Partition: 3, Offset: 42, Key: []byte("k"), Value: []byte("val"),
		Timestamp: time.UnixMilli(1700000000123),
		Headers:   []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("")}},
	}
	for _, tc := range []struct{ format, want string }{
		{`%v\n`, "val\n"},
		{`%t/%p/%o`, "tp/3/42"},
		{`%k=%s`, "k=val"},
		{`%T\t%h`, "1700000000123\ta=1,b="},
		{`%K %V %% \\ \r\0`, "1 3 % \\ \r\x00"},
		{`plain`, "plain"},
	} {
		f, err := parseFormat(tc.format)
		if err != nil {
			t.Fatalf("%q: %v", tc.format, err)
		}
		if got := string(f.appendRecord(nil, r)); got != tc.want {
			t.Errorf("%q: got %q want %q", tc.format, got, tc.want)
		}
	}
	for _, bad := range []string{`%`, `%x`, `\`, `\q`} {
		if _, err := parseFormat(bad); err == nil {
			t.Errorf("%q: expected an error", bad)
		}
	}
}

func TestParseOffset(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want kgo.Offset
	}{
		{"start", kgo.NewOffset().AtStart()},
		{"end", kgo.NewOffset().AtEnd()},
		{"7", kgo.NewOffset().At(7)},
		{"-7", kgo.NewOffset().AtEnd().Relative(-7)},
		{"+7", kgo.NewOffset().AtStart().Relative(7)},
		{"@1700000000000", kgo.NewOffset().AfterMilli(1700000000000)},
	} {
		got, err := parseOffset(tc.in)
		if err != nil || got.String() != tc.want.String() {
			t.Errorf("%q: got %v, %v want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "soon", "@", "@x", "--1", "1.5"} {
		if _, err := parseOffset(bad); err == nil {
			t.Errorf("%q: expected an error", bad)
		}
	}
}
