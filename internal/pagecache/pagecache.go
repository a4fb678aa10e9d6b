//go:build linux

// Package pagecache tells tests how much of a file the kernel holds in its
// page cache (mincore(2) over a read-only mapping, which faults nothing in).
package pagecache

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Resident counts the pages of the file at path that are cached, and its
// pages in all.
func Resident(path string) (resident, total int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	if st.Size() == 0 {
		return 0, 0, nil
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0, 0, fmt.Errorf("mmap %s: %w", path, err)
	}
	defer unix.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (len(m)+page-1)/page)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		return 0, 0, fmt.Errorf("mincore %s: %w", path, errno)
	}
	for _, v := range vec {
		resident += int(v & 1)
	}
	return resident, len(vec), nil
}

// Droppable reports whether files in dir can leave the page cache at all:
// tmpfs keeps its pages whatever posix_fadvise asks.
func Droppable(dir string) bool {
	var sfs unix.Statfs_t
	return unix.Statfs(dir, &sfs) != nil || sfs.Type != unix.TMPFS_MAGIC
}
