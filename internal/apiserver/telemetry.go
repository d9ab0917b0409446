package apiserver

import (
	corev1a2 "apoxy.dev/apoxy/api/core/v1alpha2"
	"apoxy.dev/apoxy/internal/accesslog"
)

// The API types validate access-log formats with the data plane's own parser, so a format the
// gateway would refuse is refused when stored (with the offending operator and its offset).
func init() {
	corev1a2.ValidateAccessLogFormat = func(format string) error {
		_, err := accesslog.ParseText(format)
		return err
	}
	corev1a2.ValidateAccessLogJSON = func(fields map[string]string) error {
		set := map[string]string{}
		for k, v := range fields {
			if v != "" { // "" removes a default field
				set[k] = v
			}
		}
		_, err := accesslog.ParseJSON(accesslog.JSONFieldsFromMap(set), accesslog.JSONOptions{})
		return err
	}
}
