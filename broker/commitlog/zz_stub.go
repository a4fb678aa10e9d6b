package commitlog

import "errors"

// TEMPORARY stubs until the replica API lands.

func (l *Log) TruncateTo(offset int64) error              { return errors.New("stub") }
func (l *Log) TruncateFullyAndStartAt(offset int64) error { return errors.New("stub") }
