package main

// The consume -f format string, kcat style: %t topic, %p partition, %o offset,
// %k key, %v (or %s) value, %T timestamp in ms, %h headers as k=v,k2=v2,
// %K / %V key / value length, %% a percent sign; \n, \t, \r, \0 and \\ escapes.

import (
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// recordFormat is a parsed -f format: a list of literal or field segments.
type recordFormat []formatSegment

type formatSegment struct {
	lit   []byte // literal bytes, when verb is 0
	field byte   // the letter after %, or 0 for a literal
}

// parseFormat compiles a -f format string once, so that unknown verbs and
// escapes are reported before consuming starts.
func parseFormat(s string) (recordFormat, error) {
	var f recordFormat
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			f = append(f, formatSegment{lit: lit})
			lit = nil
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			if i+1 == len(s) {
				return nil, fmt.Errorf("format %q ends with a lone backslash", s)
			}
			i++
			switch s[i] {
			case 'n':
				lit = append(lit, '\n')
			case 't':
				lit = append(lit, '\t')
			case 'r':
				lit = append(lit, '\r')
			case '0':
				lit = append(lit, 0)
			case '\\':
				lit = append(lit, '\\')
			default:
				return nil, fmt.Errorf("format %q: unknown escape \\%c", s, s[i])
			}
		case '%':
			if i+1 == len(s) {
				return nil, fmt.Errorf("format %q ends with a lone %%", s)
			}
			i++
			switch v := s[i]; v {
			case '%':
				lit = append(lit, '%')
			case 't', 'p', 'o', 'k', 'v', 's', 'T', 'h', 'K', 'V':
				flush()
				f = append(f, formatSegment{field: v})
			default:
				return nil, fmt.Errorf("format %q: unknown verb %%%c (want %%t %%p %%o %%k %%v %%T %%h %%K %%V)", s, v)
			}
		default:
			lit = append(lit, c)
		}
	}
	flush()
	return f, nil
}

// appendRecord appends r rendered through the format to dst.
func (f recordFormat) appendRecord(dst []byte, r *kgo.Record) []byte {
	for _, seg := range f {
		switch seg.field {
		case 0:
			dst = append(dst, seg.lit...)
		case 't':
			dst = append(dst, r.Topic...)
		case 'p':
			dst = strconv.AppendInt(dst, int64(r.Partition), 10)
		case 'o':
			dst = strconv.AppendInt(dst, r.Offset, 10)
		case 'k':
			dst = append(dst, r.Key...)
		case 'v', 's':
			dst = append(dst, r.Value...)
		case 'K':
			dst = strconv.AppendInt(dst, int64(len(r.Key)), 10)
		case 'V':
			dst = strconv.AppendInt(dst, int64(len(r.Value)), 10)
		case 'T':
			dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
		case 'h':
			for i, h := range r.Headers {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, h.Key...)
				dst = append(dst, '=')
				dst = append(dst, h.Value...)
			}
		}
	}
	return dst
}
