//go:build !linux

package cli

// releaseStartupCode is a no-op off Linux.
func releaseStartupCode() int { return 0 }
