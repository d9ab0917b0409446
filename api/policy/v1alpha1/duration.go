package v1alpha1

import (
	"regexp"
	"strconv"
	"time"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// durationPattern is Gateway API's Duration syntax (GEP-2257): up to four number-unit pairs,
// each number at most five digits, units h, m, s and ms.
var durationPattern = regexp.MustCompile(`^([0-9]{1,5}(h|m|s|ms)){1,4}$`)

// ParseDuration parses a Gateway API Duration ("1h30m", "250ms"). It refuses what the syntax
// refuses even when Go's time.ParseDuration would accept it ("1.5s", "-1s", "1us").
func ParseDuration(d gwapiv1.Duration) (time.Duration, bool) {
	if !durationPattern.MatchString(string(d)) {
		return 0, false
	}
	v, err := time.ParseDuration(string(d))
	return v, err == nil
}

// FormatDuration renders d in Gateway API Duration syntax, largest units first and zero parts
// left out ("1h30m", "250ms", "0s"). Sub-millisecond parts are dropped.
func FormatDuration(d time.Duration) gwapiv1.Duration {
	if d < time.Millisecond {
		return "0s"
	}
	var out []byte
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}} {
		if n := d / u.unit; n > 0 {
			out = strconv.AppendInt(out, int64(n), 10)
			out = append(out, u.name...)
			d -= n * u.unit
		}
	}
	return gwapiv1.Duration(out)
}
