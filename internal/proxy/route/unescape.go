package route

import "net/url"

// unescape decodes a query component; malformed escapes are kept literally.
func unescape(s string) string {
	v, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return v
}
