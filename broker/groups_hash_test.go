package broker

import (
	"testing"
	"unicode/utf16"
)

// TestGroupPartitionMatchesUTF16 checks the allocation-free hash against
// Java's String.hashCode computed over utf16.Encode([]rune(s)), including
// invalid UTF-8 (one U+FFFD per bad byte in both) and surrogate pairs.
func TestGroupPartitionMatchesUTF16(t *testing.T) {
	javaHash := func(s string) int32 {
		var h int32
		for _, u := range utf16.Encode([]rune(s)) {
			h = 31*h + int32(u)
		}
		return h
	}
	for _, s := range []string{"", "a", "consumer-group-1", "grüße", "日本語のグループ", "\U0001F600x\U0010FFFF",
		"bad\xffbyte", "\xed\xa0\x80 encoded surrogate", "\uFFFD", "polygenelubricants"} {
		h := javaHash(s)
		want := 0
		if h != -1<<31 {
			if h < 0 {
				h = -h
			}
			want = int(h) % 50
		}
		if got := groupPartition(s, 50); got != want {
			t.Errorf("groupPartition(%q, 50) = %d, want %d", s, got, want)
		}
	}
}
