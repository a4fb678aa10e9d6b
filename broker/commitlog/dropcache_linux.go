package commitlog

import (
	"os"

	"golang.org/x/sys/unix"
)

// dropCache asks the kernel to drop the cached pages of f's bytes
// [from, to), which are clean (fsynced). The first page is included whole:
// the previous call left it cached because it was partly unwritten then.
// Failure only means the pages stay cached.
func dropCache(f *os.File, from, to int64) {
	from &^= int64(os.Getpagesize() - 1)
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.Fadvise(int(fd), from, to-from, unix.FADV_DONTNEED)
	})
}
