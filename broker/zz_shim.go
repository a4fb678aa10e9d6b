package broker

import "github.com/sluice-io/sluice/broker/commitlog"

// TEMPORARY until commitlog grows retention and compaction.
type logShim struct{ *commitlog.Log }

func shim(l *commitlog.Log) logShim { return logShim{l} }
func (s logShim) EnforceRetention(now int64) (int, error) {
	if r, ok := any(s.Log).(interface{ EnforceRetention(int64) (int, error) }); ok {
		return r.EnforceRetention(now)
	}
	return 0, nil
}
func (s logShim) Compact(now int64) (any, error) { return nil, nil }
func (s logShim) DeleteRecordsBefore(off, hw int64) (int64, error) {
	if r, ok := any(s.Log).(interface {
		DeleteRecordsBefore(int64, int64) (int64, error)
	}); ok {
		return r.DeleteRecordsBefore(off, hw)
	}
	return s.StartOffset(), nil
}
