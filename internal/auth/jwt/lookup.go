package jwt

// LookupClaim returns the value at path (from SplitClaimPath) in verified claims, descending
// into objects; false when a step is missing or not an object. Callers hold only claims of
// verified tokens (a request's identity), never an unverified token's.
func LookupClaim(claims map[string]any, path []string) (any, bool) {
	return lookupClaim(claims, path)
}
