package v1alpha1

import (
	"net/netip"
	"strings"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidateProject checks a Project: its name is a DNS label (it becomes a URL path segment and
// part of every key), keyRevision is not negative, hostnames are lower-case names or "*."
// wildcards, and backendNetworks are CIDRs. Every problem is returned, each naming its field.
func ValidateProject(p *Project) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range apivalidation.NameIsDNSLabel(p.Name, false) {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), p.Name, msg))
	}
	if p.Spec.KeyRevision < 0 {
		errs = append(errs, field.Invalid(field.NewPath("spec", "keyRevision"), p.Spec.KeyRevision, "must not be negative"))
	}
	for i, h := range p.Spec.Hostnames {
		name := strings.TrimPrefix(h, "*.")
		if msgs := utilvalidation.IsDNS1123Subdomain(name); len(msgs) > 0 || h == "" || strings.Contains(name, "*") {
			errs = append(errs, field.Invalid(field.NewPath("spec", "hostnames").Index(i), h,
				"must be a lower-case hostname (shop.example.com) or a wildcard (*.example.com)"))
		}
	}
	for i, c := range p.Spec.BackendNetworks {
		if _, err := netip.ParsePrefix(c); err != nil {
			errs = append(errs, field.Invalid(field.NewPath("spec", "backendNetworks").Index(i), c,
				"must be a CIDR such as 10.0.0.0/8 or fd00::/8"))
		}
	}
	return errs
}
