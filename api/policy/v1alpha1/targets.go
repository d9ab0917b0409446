package v1alpha1

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// TargetsSummary renders targetRefs as "Kind/name[/sectionName]" joined by commas, for the
// Targets column of `apoxy get trafficpolicies` and `apoxy get authpolicies`.
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

// Policy is what the translator's attachment code (precedence, conflicts, merge, status) needs
// of a policy kind; TrafficPolicy and AuthPolicy share that code through it.
type Policy interface {
	GetNamespace() string
	GetName() string
	GetGeneration() int64
	GetCreationTimestamp() metav1.Time
	// GetTargetRefs returns spec.targetRefs.
	GetTargetRefs() []gwapiv1.LocalPolicyTargetReferenceWithSectionName
	// GetStrategy returns spec.strategy (Default when unset).
	GetStrategy() PolicyStrategy
	// GetStatus returns the policy's status, for the translator to keep transition times.
	GetStatus() *gwapiv1.PolicyStatus
}

// GetTargetRefs returns spec.targetRefs.
func (p *TrafficPolicy) GetTargetRefs() []gwapiv1.LocalPolicyTargetReferenceWithSectionName {
	return p.Spec.TargetRefs
}

// GetStrategy returns spec.strategy, Default when unset.
func (p *TrafficPolicy) GetStrategy() PolicyStrategy { return strategyOrDefault(p.Spec.Strategy) }

// GetStatus returns the policy's status.
func (p *TrafficPolicy) GetStatus() *gwapiv1.PolicyStatus { return &p.Status }

// GetTargetRefs returns spec.targetRefs.
func (p *AuthPolicy) GetTargetRefs() []gwapiv1.LocalPolicyTargetReferenceWithSectionName {
	return p.Spec.TargetRefs
}

// GetStrategy returns spec.strategy, Default when unset.
func (p *AuthPolicy) GetStrategy() PolicyStrategy { return strategyOrDefault(p.Spec.Strategy) }

// strategyOrDefault returns s, or Default when s is unset (a policy not yet defaulted).
func strategyOrDefault(s PolicyStrategy) PolicyStrategy {
	if s == "" {
		return StrategyDefault
	}
	return s
}

// GetStatus returns the policy's status.
func (p *AuthPolicy) GetStatus() *gwapiv1.PolicyStatus { return &p.Status }

// The policy kinds implement Policy.
var (
	_ Policy = (*TrafficPolicy)(nil)
	_ Policy = (*AuthPolicy)(nil)
)
