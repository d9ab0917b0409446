//go:build wasip1

package edgefunc

import (
	"strings"
	"unsafe"
)

// Header and body kinds of the ABI.
const (
	kindRequest  = 0
	kindResponse = 1
)

// scratch is the buffer the host writes into; it grows when the host says a value is
// longer. A guest runs one request at a time, so one buffer is enough.
var scratch = make([]byte, 2048)

// ptr is b's address in linear memory (0 for an empty b). The Go wasm heap does not move.
func ptr(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

// sptr is s's address and length.
func sptr(s string) (uint32, uint32) {
	if len(s) == 0 {
		return 0, 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.StringData(s)))), uint32(len(s))
}

// grow makes scratch at least n bytes long.
func grow(n uint32) {
	if int(n) > len(scratch) {
		scratch = make([]byte, n)
	}
}

// getBytes calls a (buf, limit) -> length host function until the value fits, and returns a
// copy of it.
func getBytes(get func(buf, limit uint32) uint32) []byte {
	for {
		n := get(ptr(scratch), uint32(len(scratch)))
		if int(n) <= len(scratch) {
			return append([]byte(nil), scratch[:n]...)
		}
		grow(n)
	}
}

// getString is getBytes as a string.
func getString(get func(buf, limit uint32) uint32) string {
	for {
		n := get(ptr(scratch), uint32(len(scratch)))
		if int(n) <= len(scratch) {
			return string(scratch[:n])
		}
		grow(n)
	}
}

// getList calls a (buf, limit) -> count<<32|length host function until the list fits, and
// splits its NUL-terminated strings.
func getList(get func(buf, limit uint32) uint64) []string {
	for {
		r := get(ptr(scratch), uint32(len(scratch)))
		count, n := uint32(r>>32), uint32(r)
		if int(n) > len(scratch) {
			grow(n)
			continue
		}
		if count == 0 {
			return nil
		}
		list := strings.Split(string(scratch[:n]), "\x00")
		return list[:len(list)-1] // the last string is terminated too
	}
}
