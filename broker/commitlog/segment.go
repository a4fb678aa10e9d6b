package commitlog

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// segment is one <base>.log file with its in-memory sparse index. Fields are
// guarded by the owning Log's mutex; the file itself is read concurrently
// (pread and sendfile) up to a size captured under that mutex.
type segment struct {
	dir   string
	base  int64
	f     *os.File
	size  int64 // bytes of whole batches
	next  int64 // offset after the segment's last batch (base when empty)
	maxTs int64 // largest batch max timestamp, -1 when empty

	idx          []indexEntry
	sinceIndex   int64     // bytes appended since the last index entry
	firstAppend  time.Time // wall time of the first append, for segment.ms
	synced       int64     // bytes known to be fsynced
	indexesDirty bool      // in-memory index differs from the files
}

func segPath(dir string, base int64, ext string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, ext))
}

func createSegment(dir string, base int64) (*segment, error) {
	f, err := os.OpenFile(segPath(dir, base, ".log"), os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create segment %d: %w", base, err)
	}
	return &segment{dir: dir, base: base, f: f, next: base, maxTs: -1, indexesDirty: true}, nil
}

// appendBatch writes one stamped batch at the end of the segment and indexes
// it every interval bytes.
func (s *segment) appendBatch(b []byte, h *Header, interval int64) error {
	if _, err := s.f.WriteAt(b, s.size); err != nil {
		// A short write (ENOSPC, EIO) leaves bytes past s.size that a later
		// roll would keep inside a trusted segment: cut them now.
		if terr := s.f.Truncate(s.size); terr != nil {
			return fmt.Errorf("append to segment %d: %w (and truncating the partial write: %v): %w", s.base, err, terr, errFailed)
		}
		return fmt.Errorf("append to segment %d: %w", s.base, err)
	}
	s.track(h, s.size, int64(len(b)), interval)
	if s.firstAppend.IsZero() {
		s.firstAppend = time.Now()
	}
	return nil
}

// track records a batch at pos in the in-memory state and index.
func (s *segment) track(h *Header, pos, size, interval int64) {
	if h.MaxTimestamp > s.maxTs {
		s.maxTs = h.MaxTimestamp
	}
	if s.sinceIndex >= interval {
		s.idx = append(s.idx, indexEntry{relOffset: uint32(h.LastOffset() - s.base), pos: uint32(pos), maxTs: s.maxTs})
		s.sinceIndex = 0
		s.indexesDirty = true
	}
	s.sinceIndex += size
	s.size = pos + size
	s.next = h.LastOffset() + 1
}

// truncateTo cuts the segment at byte position pos, dropping index entries at
// or after it.
func (s *segment) truncateTo(pos, next int64) error {
	if err := s.f.Truncate(pos); err != nil {
		return fmt.Errorf("truncate segment %d: %w", s.base, err)
	}
	for len(s.idx) > 0 && int64(s.idx[len(s.idx)-1].pos) >= pos {
		s.idx = s.idx[:len(s.idx)-1]
	}
	s.size, s.next = pos, next
	if s.synced > pos {
		s.synced = pos
	}
	s.indexesDirty = true
	return nil
}

func (s *segment) writeIndexes(sync bool) error {
	if !s.indexesDirty {
		return nil
	}
	if err := writeIndexes(s.dir, s.base, s.idx, sync); err != nil {
		return fmt.Errorf("write index of segment %d: %w", s.base, err)
	}
	s.indexesDirty = false
	return nil
}

// remove deletes the segment's files. The open descriptor is closed after a
// delay (Kafka's file.delete.delay.ms) so that fetches already serving it by
// sendfile finish.
func (s *segment) remove() {
	removeSegmentFiles(s.dir, s.base)
	s.closeLater()
}

// closeLater closes the segment's descriptor after fileDeleteDelay without
// touching its files: compaction uses it for a segment whose file was
// replaced by rename, so readers holding the old descriptor finish.
func (s *segment) closeLater() {
	f := s.f
	time.AfterFunc(fileDeleteDelay, func() { f.Close() })
}

// segmentExts are the files that make up one segment.
var segmentExts = []string{".log", ".index", ".timeindex", ".txnindex"}

func removeSegmentFiles(dir string, base int64) {
	for _, ext := range segmentExts {
		os.Remove(segPath(dir, base, ext))
	}
}

var fileDeleteDelay = 60 * time.Second

// scanReaders are the buffered readers of segment scans, pooled: opening
// thousands of partitions at start-up would otherwise allocate one each.
var scanReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 256<<10) }}

// errStop ends a scan early without error.
var errStop = errors.New("stop")

// scan walks the batches of a segment starting at byte position pos. Batches
// whose last offset is at or past verifyFrom have their CRC checked. fn sees each header and its
// position; scan returns the position just past the last good batch and the
// error that stopped it (nil at a clean end of file).
func (s *segment) scan(pos int64, verifyFrom int64, fn func(h *Header, pos int64) error) (int64, error) {
	st, err := s.f.Stat()
	if err != nil {
		return pos, fmt.Errorf("stat segment %d: %w", s.base, err)
	}
	fileEnd := st.Size()
	r := scanReaders.Get().(*bufio.Reader)
	r.Reset(io.NewSectionReader(s.f, pos, 1<<62))
	defer scanReaders.Put(r)
	hdr := make([]byte, HeaderSize)
	var body []byte
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			if err == io.EOF {
				return pos, nil
			}
			return pos, fmt.Errorf("%w: torn batch header at %d", ErrCorrupt, pos)
		}
		h, err := ParseHeader(hdr)
		if err != nil {
			return pos, fmt.Errorf("at %d: %w", pos, err)
		}
		rest := h.Size() - HeaderSize
		if pos+h.Size() > fileEnd {
			// Checked before reading so that a corrupt length never
			// makes us allocate up to 2 GiB for a body that is not there.
			return pos, fmt.Errorf("%w: batch at %d runs past the end of the file", ErrCorrupt, pos)
		}
		if h.LastOffset() >= verifyFrom {
			if int64(cap(body)) < rest {
				body = make([]byte, rest)
			}
			body = body[:rest]
			if _, err := io.ReadFull(r, body); err != nil {
				return pos, fmt.Errorf("%w: torn batch at %d", ErrCorrupt, pos)
			}
			crc := crc32.Update(crc32.Checksum(hdr[offAttributes:], castagnoli), castagnoli, body)
			if crc != h.CRC {
				return pos, fmt.Errorf("%w: CRC mismatch at %d", ErrCorrupt, pos)
			}
		} else if n, err := r.Discard(int(rest)); int64(n) != rest || err != nil {
			return pos, fmt.Errorf("%w: torn batch at %d", ErrCorrupt, pos)
		}
		if err := fn(&h, pos); err != nil {
			if err == errStop {
				return pos, nil
			}
			return pos, err
		}
		pos += h.Size()
	}
}

// readHeaderAt reads the batch header at pos.
func (s *segment) readHeaderAt(pos int64) (Header, error) {
	var b [HeaderSize]byte
	if _, err := s.f.ReadAt(b[:], pos); err != nil {
		return Header{}, fmt.Errorf("read batch header at %d of segment %d: %w", pos, s.base, err)
	}
	return ParseHeader(b[:])
}
