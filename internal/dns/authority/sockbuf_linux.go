package authority

import (
	"net"

	"golang.org/x/sys/unix"
)

// udpBufferBytes is the receive and send buffer asked for the UDP socket: a burst of queries
// (a resolver farm's, or dnsperf's 1024 outstanding) or a pause of the process must not
// overflow the kernel's default of about 200 KiB, which drops queries silently.
const udpBufferBytes = 4 << 20

// growBuffers raises a UDP socket's buffers past net.core.rmem_max when the process may (root:
// SO_RCVBUFFORCE, as NSD does), else as far as the limit allows.
func growBuffers(c *net.UDPConn) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, udpBufferBytes) != nil {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, udpBufferBytes)
		}
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, udpBufferBytes) != nil {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, udpBufferBytes)
		}
	})
}
