//go:build !unix

package build

import "os/exec"

// killGroupOnCancel leaves cmd as it is: a cancelled context kills the go command alone.
func killGroupOnCancel(*exec.Cmd) {}
