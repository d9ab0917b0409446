package v1alpha1

import (
	"strings"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// TargetsSummary renders targetRefs as "Kind/name[/sectionName]" joined by commas, for the
// Targets column of `apoxy get trafficpolicies`.
func TargetsSummary(refs []gwapiv1.LocalPolicyTargetReferenceWithSectionName) string {
	parts := make([]string, len(refs))
	for i, r := range refs {
		parts[i] = string(r.Kind) + "/" + string(r.Name)
		if r.SectionName != nil {
			parts[i] += "/" + string(*r.SectionName)
		}
	}
	return strings.Join(parts, ",")
}
