//go:build !linux

package agent

import (
	"errors"
	"log/slog"
)

func newTUNPlane(string, int, *slog.Logger) (plane, error) {
	return nil, errors.New("kernel mode needs Linux: use --mode user")
}
