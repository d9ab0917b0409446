package conformance

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
	"sigs.k8s.io/gateway-api/pkg/features"
)

// unclaimedReasons says why a feature we do not advertise is not claimed.
// Every test the driver skips is skipped because it needs one of these (or a
// feature with the default reason below); the report prints the reason next
// to the test, so nothing is skipped silently.
var unclaimedReasons = map[features.FeatureName]string{
	features.SupportMesh:                  "mesh profile: needs a service mesh with sidecars (Kubernetes-only)",
	features.SupportGatewayInfrastructure: "checks labels on the Pods/Services/ServiceAccounts a Gateway generates: Kubernetes-only, we generate none",
}

// result is one conformance test's outcome.
type result struct {
	test   suite.ConformanceTest
	skip   string // non-empty: not run, and why
	passed bool
}

func (r result) outcome() string {
	switch {
	case r.skip != "":
		return "skipped"
	case r.passed:
		return "passed"
	}
	return "failed"
}

// skipReason returns why a test is not run with the features we advertise,
// or "" when it runs.
func skipReason(ct suite.ConformanceTest, have sets.Set[features.FeatureName]) string {
	if len(ct.Features) == 0 {
		return "declares no features"
	}
	var missing []string
	for _, f := range ct.Features {
		if have.Has(f) {
			continue
		}
		why := unclaimedReasons[f]
		if strings.HasPrefix(string(f), "Mesh") {
			why = unclaimedReasons[features.SupportMesh]
		}
		if why == "" {
			why = "not implemented yet"
		}
		missing = append(missing, fmt.Sprintf("%s (%s)", f, why))
	}
	return strings.Join(missing, "; ")
}

// profiles are the Gateway API conformance profiles the report groups by.
var profiles = []suite.ConformanceProfile{
	suite.GatewayHTTPConformanceProfile,
	suite.GatewayGRPCConformanceProfile,
	suite.GatewayTLSConformanceProfile,
	suite.GatewayTCPConformanceProfile,
	suite.GatewayUDPConformanceProfile,
	suite.MeshHTTPConformanceProfile,
	suite.MeshGRPCConformanceProfile,
}

// inProfile: every feature the test needs is one of the profile's, and it
// exercises the profile's own route kind (so Gateway-only tests count
// under HTTP, the profile every gateway must pass).
func inProfile(ct suite.ConformanceTest, p suite.ConformanceProfile) bool {
	all := p.CoreFeatures.Union(p.ExtendedFeatures)
	for _, f := range ct.Features {
		if !all.Has(f) {
			return false
		}
	}
	if p.Name == suite.GatewayHTTPConformanceProfileName {
		return true
	}
	for _, f := range ct.Features {
		if p.CoreFeatures.Has(f) && f != features.SupportGateway && f != features.SupportReferenceGrant {
			return true
		}
	}
	return false
}

// coreOnly: the test needs nothing beyond the profile's core features, so a
// conformant implementation of the profile must run it.
func coreOnly(ct suite.ConformanceTest, p suite.ConformanceProfile) bool {
	for _, f := range ct.Features {
		if !p.CoreFeatures.Has(f) {
			return false
		}
	}
	return len(ct.Features) > 0
}

type tally struct{ passed, failed, skipped int }

func (c *tally) add(r result) {
	switch r.outcome() {
	case "passed":
		c.passed++
	case "failed":
		c.failed++
	default:
		c.skipped++
	}
}

func (c tally) String() string {
	return fmt.Sprintf("passed %d, failed %d, skipped %d", c.passed, c.failed, c.skipped)
}

// renderReport writes the human report: totals, then per profile the counts
// overall and per feature, the failures by name, and every skip with its reason.
func renderReport(have sets.Set[features.FeatureName], results []result) string {
	var b strings.Builder
	var total tally
	for _, r := range results {
		total.add(r)
	}
	fmt.Fprintf(&b, "UNOFFICIAL Gateway API conformance run (gateway-api v1.6.3, not a certified report)\n")
	fmt.Fprintf(&b, "advertised features (%d): %s\n", have.Len(), strings.Join(featureNames(have), ", "))
	fmt.Fprintf(&b, "all tests: %s\n", total)
	for _, p := range profiles {
		var pt tally
		perFeature := map[features.FeatureName]*tally{}
		var failed []string
		for _, r := range results {
			if !inProfile(r.test, p) {
				continue
			}
			pt.add(r)
			for _, f := range r.test.Features {
				if perFeature[f] == nil {
					perFeature[f] = &tally{}
				}
				perFeature[f].add(r)
			}
			if r.outcome() == "failed" {
				failed = append(failed, r.test.ShortName)
			}
		}
		fmt.Fprintf(&b, "\nprofile %s: %s\n", p.Name, pt)
		for _, f := range featureNames(sets.KeySet(perFeature)) {
			kind := "extended"
			if p.CoreFeatures.Has(features.FeatureName(f)) {
				kind = "core"
			}
			fmt.Fprintf(&b, "  %-8s %-62s %s\n", kind, f, perFeature[features.FeatureName(f)])
		}
		for _, f := range failed {
			fmt.Fprintf(&b, "  FAILED %s\n", f)
		}
	}
	fmt.Fprintf(&b, "\nskipped tests and why:\n")
	for _, r := range results {
		if r.skip != "" {
			fmt.Fprintf(&b, "  %s: needs %s\n", r.test.ShortName, r.skip)
		}
	}
	return b.String()
}

func featureNames(s sets.Set[features.FeatureName]) []string {
	out := make([]string, 0, s.Len())
	for f := range s {
		out = append(out, string(f))
	}
	slices.Sort(out)
	return out
}
