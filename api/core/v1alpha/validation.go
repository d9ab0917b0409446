package v1alpha

import (
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidateTunnelNode checks a TunnelNode (old is nil on create). Its name is a DNS label: it is
// the node's name in the tunnel domain (<node>.tun.<suffix>).
func ValidateTunnelNode(n, old *TunnelNode) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Label(n.Name) {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), n.Name,
			msg+": a TunnelNode's name is a DNS label of its tunnel domain name (<node>.tun.<suffix>)"))
	}
	return errs
}
