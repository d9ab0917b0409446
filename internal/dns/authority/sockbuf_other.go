//go:build !linux

package authority

import "net"

const udpBufferBytes = 4 << 20

func growBuffers(c *net.UDPConn) {
	c.SetReadBuffer(udpBufferBytes)
	c.SetWriteBuffer(udpBufferBytes)
}
