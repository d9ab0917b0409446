package cli

import "testing"

func TestSuggestFields(t *testing.T) {
	for in, want := range map[string]string{
		`Error from server (BadRequest): Backend in version "v1alpha2" cannot be handled as a Backend: strict decoding error: unknown field "spec.endpointz"`:    `Error from server (BadRequest): Backend in version "v1alpha2" cannot be handled as a Backend: strict decoding error: unknown field "spec.endpointz" (did you mean "spec.endpoints"?)`,
		`HTTPRoute in version "v1" cannot be handled as a HTTPRoute: strict decoding error: unknown field "spec.rules[0].matchs", unknown field "spec.hostname"`: `HTTPRoute in version "v1" cannot be handled as a HTTPRoute: strict decoding error: unknown field "spec.rules[0].matchs" (did you mean "spec.rules[0].matches"?), unknown field "spec.hostname" (did you mean "spec.hostnames"?)`,
		`HTTPRoute in version "v1" cannot be handled as a HTTPRoute: strict decoding error: unknown field "metadata.lables"`:                                     `HTTPRoute in version "v1" cannot be handled as a HTTPRoute: strict decoding error: unknown field "metadata.lables" (did you mean "metadata.labels"?)`,
		`HTTPRoute in version "v1" cannot be handled as a HTTPRoute: strict decoding error: unknown field "spec.zzzzzzzzzzzz"`:                                   `HTTPRoute in version "v1" cannot be handled as a HTTPRoute: strict decoding error: unknown field "spec.zzzzzzzzzzzz"`,
		`some other error`: `some other error`,
	} {
		if got := suggestFields(in); got != want {
			t.Errorf("\n got %s\nwant %s", got, want)
		}
	}
}
