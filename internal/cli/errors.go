package cli

import (
	"regexp"
	"strings"
)

var (
	// sourceClause is kubectl's `error when creating "FILE": ` (or applying, patching...).
	sourceClause = regexp.MustCompile(`error when [a-z ]+ "[^"]*": `)
	// invalidList matches `... is invalid: [cause, cause, ...]` at the end of a line.
	invalidList = regexp.MustCompile(`^(.*) is invalid: \[(.*)\]$`)
	// causeStart finds where the next field error begins inside the bracketed list.
	causeStart = regexp.MustCompile(`, ((?:spec|status|metadata|data|stringData|type|kind|apiVersion|<nil>)[.\[:])`)
)

const celSkipped = `<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation`

// readableErrors rewrites kubectl's error text so that every problem is on its own line:
//
//	Error from server (Invalid): Backend.core.apoxy.dev "x" is invalid:
//	  * spec.endpoints: Required value: ...
//	  * spec.protocol: Unsupported value: "h3": supported values: ...
//
// and drops the name of the temporary file apply feeds kubectl.
func readableErrors(msg string) string {
	var out []string
	for _, line := range strings.Split(strings.TrimRight(msg, "\n"), "\n") {
		line = suggestFields(strings.TrimRight(sourceClause.ReplaceAllString(line, ""), " "))
		if strings.HasPrefix(line, "* ") { // kubectl's own list for a single invalid object
			line = "  " + line
		}
		m := invalidList.FindStringSubmatch(line)
		if m == nil {
			out = append(out, line)
			continue
		}
		out = append(out, m[1]+" is invalid:")
		list := causeStart.ReplaceAllString(m[2], "\x00$1")
		for _, cause := range strings.Split(list, "\x00") {
			if cause == celSkipped {
				cause = "(more rules are checked once the errors above are fixed)"
			}
			out = append(out, "  * "+cause)
		}
	}
	return strings.Join(out, "\n")
}
