package broker

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"syscall"
)

// Fetch responses are encoded by kmsg like every other response, but their
// record sets are not copied into the buffer: the handler puts a unique
// 16-byte marker in each partition's RecordBatches, and the writer replaces
// each marker (and its length prefix) by the real length and the file range,
// sent with sendfile(2) straight from the segment.

const markerLen = 16

// The reader goroutine (a fetch answered at once) and the writer (a long
// poll finishing) both take markers, hence the atomic counter.
type markerSource struct {
	prefix [12]byte
	n      atomic.Uint32
}

func (m *markerSource) init() { rand.Read(m.prefix[:]) }

func (m *markerSource) next() []byte {
	b := make([]byte, markerLen)
	copy(b, m.prefix[:])
	binary.BigEndian.PutUint32(b[12:], m.n.Add(1))
	return b
}

// fileRange is a record set to splice into a response in place of marker.
type fileRange struct {
	marker []byte
	file   *os.File
	pos    int64
	size   int64
}

// sendWithFiles writes buf (a whole encoded response with markers) with each
// marker replaced by its file range.
func (cc *conn) sendWithFiles(buf []byte, files []fileRange, flexible bool) error {
	oldPrefix := 4
	if flexible {
		oldPrefix = 1 // uvarint(16+1)
	}
	type cut struct{ start, end int } // byte range of prefix+marker in buf
	cuts := make([]cut, 0, len(files))
	total := int64(len(buf) - 4)
	from := 0
	for _, f := range files {
		i := bytes.Index(buf[from:], f.marker)
		if i < 0 || from+i < oldPrefix {
			return errors.New("fetch response marker not found")
		}
		c := cut{start: from + i - oldPrefix, end: from + i + markerLen}
		cuts = append(cuts, c)
		total += int64(len(lengthPrefix(nil, f.size, flexible))) + f.size - int64(c.end-c.start)
		from = c.end
	}
	if total > 1<<31-1 {
		return fmt.Errorf("fetch response of %d bytes is too large", total)
	}
	binary.BigEndian.PutUint32(buf, uint32(total))
	var prefix []byte
	at := 0
	for i, f := range files {
		prefix = lengthPrefix(prefix[:0], f.size, flexible)
		bufs := net.Buffers{buf[at:cuts[i].start], prefix}
		if _, err := bufs.WriteTo(cc.c); err != nil {
			return err
		}
		if err := sendFileRange(cc.c, f.file, f.pos, f.size); err != nil {
			return err
		}
		at = cuts[i].end
	}
	_, err := cc.c.Write(buf[at:])
	return err
}

// lengthPrefix appends the length of a nullable bytes field: int32 for
// non-flexible versions, uvarint(len+1) for compact (flexible) ones.
func lengthPrefix(dst []byte, n int64, flexible bool) []byte {
	if flexible {
		return binary.AppendUvarint(dst, uint64(n+1))
	}
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

// sendFileRange sends size bytes of f from pos with sendfile, using an
// explicit offset so that concurrent fetches of one segment never share a
// file position. Non-TCP connections (tests) fall back to a copy.
func sendFileRange(c net.Conn, f *os.File, pos, size int64) error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		buf := make([]byte, size)
		if _, err := f.ReadAt(buf, pos); err != nil {
			return err
		}
		_, err := c.Write(buf)
		return err
	}
	dst, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	src, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	cerr := src.Control(func(sfd uintptr) {
		off, remain := pos, size
		werr := dst.Write(func(dfd uintptr) bool {
			for remain > 0 {
				n, err := syscall.Sendfile(int(dfd), int(sfd), &off, int(min(remain, 1<<30)))
				if n > 0 {
					remain -= int64(n)
				}
				switch {
				case err == syscall.EAGAIN:
					return false // wait until writable
				case err == syscall.EINTR:
					continue
				case err != nil:
					serr = err
					return true
				case n == 0:
					serr = fmt.Errorf("sendfile: segment shorter than expected (%d bytes left)", remain)
					return true
				}
			}
			return true
		})
		if serr == nil {
			serr = werr
		}
	})
	if cerr != nil {
		return cerr
	}
	return serr
}
