package v1alpha1

import (
	"errors"
	"strings"
)

// ParseClaimPath splits a claim path into the names of nested claims: "." separates them,
// "\." is a dot inside one name and "\\" a backslash ("realm_access.roles" is two names,
// "https://example\.com/org" one). Every name must be non-empty. Every field that names a
// claim uses this syntax: AuthPolicy claimToHeaders and authorization jwt.claims, TrafficPolicy
// jwtClaims and countBy jwtClaim.
func ParseClaimPath(path string) ([]string, error) {
	var names []string
	var cur strings.Builder
	empty := errors.New(`has an empty claim name: remove the stray ".", or write "\." for a dot inside a name`)
	for i := 0; i < len(path); i++ {
		switch c := path[i]; c {
		case '\\':
			if i+1 == len(path) || (path[i+1] != '.' && path[i+1] != '\\') {
				return nil, errors.New(`"\" escapes only "." and "\": write "\." for a dot inside a claim name, "\\" for a backslash`)
			}
			i++
			cur.WriteByte(path[i])
		case '.':
			if cur.Len() == 0 {
				return nil, empty
			}
			names = append(names, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	if cur.Len() == 0 {
		return nil, empty
	}
	return append(names, cur.String()), nil
}
