package resource

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	corev1a "apoxy.dev/apoxy/api/core/v1alpha"
	corev1a2 "apoxy.dev/apoxy/api/core/v1alpha2"
	corev1a3 "apoxy.dev/apoxy/api/core/v1alpha3"
	extv1a2 "apoxy.dev/apoxy/api/extensions/v1alpha2"
	gatewayv1 "apoxy.dev/apoxy/api/gateway/v1"
	platformv1a1 "apoxy.dev/apoxy/api/platform/v1alpha1"
	policyv1a1 "apoxy.dev/apoxy/api/policy/v1alpha1"
	"apoxy.dev/apoxy/internal/status"
)

// coreGV is the legacy core group ("/api/v1"), from which we serve the Kubernetes kinds our
// users know (Namespace, Secret, ConfigMap).
var coreGV = schema.GroupVersion{Version: "v1"}

var (
	apoxyCategories   = []string{"apoxy"}
	gatewayCategories = []string{"gateway-api"}
)

// policyColumns are the table columns of the policy kinds (TrafficPolicy, AuthPolicy), so
// `kubectl get tp,ap` lines them up.
var policyColumns = []Column{
	{Name: "Targets", Type: "string", Description: "What the policy attaches to: kind/name[/sectionName]",
		Cell: func(o runtime.Object) any {
			return policyv1a1.TargetsSummary(o.(policyv1a1.Policy).GetTargetRefs())
		}},
	{Name: "Accepted", Type: "string", JSONPath: `.status.ancestors[0].conditions[?(@.type=="Accepted")].status`, Description: "Accepted by the first ancestor (Gateway)"},
	{Name: "Programmed", Type: "string", JSONPath: `.status.ancestors[0].conditions[?(@.type=="Programmed")].status`, Description: "Programmed in the data plane of the first ancestor (Gateway)"},
	{Name: "Strategy", Type: "string", JSONPath: ".spec.strategy", Description: "Default, or Override (Gateway baselines)", Priority: 1},
}

// registry is the one list of API kinds. The API server serves them (internal/apiserver), the
// controller watches the ones the translator reads and writes their status
// (internal/controller), Set holds them (Add, Sort), and `apoxy apply` orders them
// (internal/cli). Adding a kind is its Go types in api/, one entry here (with its Set list and,
// if the translator reports its status, its status.Report map) and its translate file.
//
// Gateway API entries repeat the upstream CRD's names, scope and categories (the API server
// refuses to start if they differ from internal/gwschema's CRDs), plus our own short names.
var registry = []*Kind{
	// Kubernetes core kinds.
	{
		GVK: coreGV.WithKind("Namespace"), Plural: "namespaces", ShortNames: []string{"ns"},
		Apply: ApplyNamespaces, Status: StatusByServer,
		goTypes: typesOf[corev1.Namespace, corev1.NamespaceList](),
		set:     inSet(func(s *Set) *[]*corev1.Namespace { return &s.Namespaces }),
	},
	{
		GVK: coreGV.WithKind("Secret"), Plural: "secrets", Namespaced: true, NoGeneration: true,
		Apply:   ApplyConfig,
		goTypes: typesOf[corev1.Secret, corev1.SecretList](),
		set:     inSet(func(s *Set) *[]*corev1.Secret { return &s.Secrets }),
	},
	{
		GVK: coreGV.WithKind("ConfigMap"), Plural: "configmaps", ShortNames: []string{"cm"}, Namespaced: true, NoGeneration: true,
		Apply:   ApplyConfig,
		goTypes: typesOf[corev1.ConfigMap, corev1.ConfigMapList](),
		set:     inSet(func(s *Set) *[]*corev1.ConfigMap { return &s.ConfigMaps }),
	},

	// Apoxy's own kinds.
	{
		GVK: corev1a2.SchemeGroupVersion.WithKind("Backend"), Plural: "backends", ShortNames: []string{"be"},
		Categories: apoxyCategories, Namespaced: true, Apply: ApplyBackends, Status: StatusByDataPlane,
		goTypes: typesOf[corev1a2.Backend, corev1a2.BackendList](),
		set:     inSet(func(s *Set) *[]*corev1a2.Backend { return &s.Backends }),
		Serving: Serving{
			Validate: validated(corev1a2.ValidateBackend),
			Columns: []Column{
				{Name: "Protocol", Type: "string", JSONPath: ".spec.protocol", Description: "Protocol spoken to the endpoints"},
				{Name: "Endpoints", Type: "string", JSONPath: ".spec.endpoints[*]['fqdn','ip']", Description: "Endpoint addresses"},
				{Name: "Health-Check", Type: "string", JSONPath: ".spec.healthCheck.interval", Description: "Health check interval", Priority: 1},
			},
		},
	},
	{
		GVK: corev1a2.SchemeGroupVersion.WithKind("Proxy"), Plural: "proxies", ShortNames: []string{"px"},
		Categories: apoxyCategories, Namespaced: true, Apply: ApplyClasses, Status: StatusByTranslator,
		goTypes: typesOf[corev1a2.Proxy, corev1a2.ProxyList](),
		set:     inSet(func(s *Set) *[]*corev1a2.Proxy { return &s.Proxies }),
		report: inReport(func(r *status.Report) map[status.Key]*corev1a2.ProxyStatus { return r.Proxies },
			func(p *corev1a2.Proxy) *corev1a2.ProxyStatus { return &p.Status }),
		Serving: Serving{
			Validate: validated(corev1a2.ValidateProxy),
			Columns: []Column{
				{Name: "Provider", Type: "string", JSONPath: ".spec.provider", Description: "Who runs the data plane"},
				{Name: "Addresses", Type: "string", JSONPath: ".status.addresses[*]", Description: "Addresses the data plane serves on"},
			},
		},
	},
	{
		GVK: corev1a2.SchemeGroupVersion.WithKind("CloudMonitoringIntegration"), Plural: "cloudmonitoringintegrations", ShortNames: []string{"cmi"},
		Categories: apoxyCategories, Namespaced: true, Apply: ApplyClasses, Status: StatusByDataPlane,
		goTypes: typesOf[corev1a2.CloudMonitoringIntegration, corev1a2.CloudMonitoringIntegrationList](),
		set:     inSet(func(s *Set) *[]*corev1a2.CloudMonitoringIntegration { return &s.CloudMonitoringIntegrations }),
		Serving: Serving{
			Validate: validated(corev1a2.ValidateCloudMonitoringIntegration),
			Columns: []Column{
				{Name: "Enabled", Type: "boolean", JSONPath: ".spec.enabled", Description: "Whether telemetry is sent"},
				{Name: "Connected", Type: "string", JSONPath: `.status.conditions[?(@.type=="Connected")].status`, Description: "Whether the last export succeeded"},
				{Name: "Last-Export", Type: "date", JSONPath: ".status.lastExportTime", Description: "When telemetry was last exported"},
				{Name: "Last-Error", Type: "string", JSONPath: ".status.lastError", Description: "The last export error", Priority: 1},
			},
		},
	},
	{
		GVK: extv1a2.SchemeGroupVersion.WithKind("DirectResponse"), Plural: "directresponses",
		Categories: apoxyCategories, Namespaced: true, Apply: ApplyBackends, Status: StatusByClients,
		goTypes: typesOf[extv1a2.DirectResponse, extv1a2.DirectResponseList](),
		set:     inSet(func(s *Set) *[]*extv1a2.DirectResponse { return &s.DirectResponses }),
		Serving: Serving{
			Validate: validated(extv1a2.ValidateDirectResponse),
			Columns: []Column{
				{Name: "Status-Code", Type: "integer", JSONPath: ".spec.statusCode", Description: "HTTP status sent"},
				{Name: "Content-Type", Type: "string", JSONPath: ".spec.contentType", Description: "Content type sent"},
			},
		},
	},
	{
		GVK: extv1a2.SchemeGroupVersion.WithKind("HTTPRouteFilter"), Plural: "httproutefilters",
		Categories: apoxyCategories, Namespaced: true, Apply: ApplyBackends, Status: StatusByClients,
		goTypes: typesOf[extv1a2.HTTPRouteFilter, extv1a2.HTTPRouteFilterList](),
		set:     inSet(func(s *Set) *[]*extv1a2.HTTPRouteFilter { return &s.HTTPRouteFilters }),
		Serving: Serving{
			Validate: validated(extv1a2.ValidateHTTPRouteFilter),
			Columns: []Column{
				{Name: "Compression-Disabled", Type: "boolean", JSONPath: ".spec.compressor.disabled", Description: "Compression turned off"},
				{Name: "Algorithms", Type: "string", JSONPath: ".spec.compressor.algorithms[*]", Description: "Algorithms offered"},
			},
		},
	},
	{
		GVK: extv1a2.SchemeGroupVersion.WithKind("EdgeFunction"), Plural: "edgefunctions", ShortNames: []string{"ef"},
		Categories: apoxyCategories, Namespaced: true, Apply: ApplyBackends, Status: StatusByReconciler,
		goTypes: typesOf[extv1a2.EdgeFunction, extv1a2.EdgeFunctionList](),
		set:     inSet(func(s *Set) *[]*extv1a2.EdgeFunction { return &s.EdgeFunctions }),
		Serving: Serving{
			Validate: validated(extv1a2.ValidateEdgeFunction),
			Columns: []Column{
				{Name: "Mode", Type: "string", JSONPath: ".spec.template.mode", Description: "filter (before the backend) or backend (replaces it)"},
				{Name: "Live-Revision", Type: "string", JSONPath: ".status.liveRevision", Description: "The revision serving requests"},
				{Name: "Ready", Type: "string", JSONPath: `.status.conditions[?(@.type=="Ready")].status`, Description: "A revision serves"},
				{Name: "Built", Type: "string", JSONPath: `.status.conditions[?(@.type=="Built")].reason`, Description: "The latest revision's build", Priority: 1},
			},
		},
	},
	{
		GVK: extv1a2.SchemeGroupVersion.WithKind("EdgeFunctionRevision"), Plural: "edgefunctionrevisions", ShortNames: []string{"efr"},
		Categories: apoxyCategories, Namespaced: true, Apply: ApplyBackends, Status: StatusByReconciler,
		goTypes: typesOf[extv1a2.EdgeFunctionRevision, extv1a2.EdgeFunctionRevisionList](),
		set:     inSet(func(s *Set) *[]*extv1a2.EdgeFunctionRevision { return &s.EdgeFunctionRevisions }),
		Serving: Serving{
			Validate: validatedUpdate(extv1a2.ValidateEdgeFunctionRevision),
			Columns: []Column{
				{Name: "Mode", Type: "string", JSONPath: ".spec.mode", Description: "filter or backend"},
				{Name: "Phase", Type: "string", JSONPath: ".status.phase", Description: "Pending, Building, Ready or Failed"},
				{Name: "Digest", Type: "string", JSONPath: ".status.artifact.digest", Description: "The built code's digest", Priority: 1},
			},
		},
	},

	// Domains: project-wide, like the zones and names they stand for.
	{
		GVK: corev1a3.SchemeGroupVersion.WithKind("DomainZone"), Plural: "domainzones", ShortNames: []string{"dz", "zone", "zones"},
		Categories: apoxyCategories, Apply: ApplyClasses, Status: StatusByReconciler,
		goTypes: typesOf[corev1a3.DomainZone, corev1a3.DomainZoneList](),
		set:     inSet(func(s *Set) *[]*corev1a3.DomainZone { return &s.DomainZones }),
		Serving: Serving{
			Validate: validatedUpdate(corev1a3.ValidateDomainZone),
			Columns: []Column{
				{Name: "Domain", Type: "string", JSONPath: ".status.domainName", Description: "The zone's DNS name"},
				{Name: "Phase", Type: "string", JSONPath: ".status.phase", Description: "Pending, Active or Error"},
				{Name: "Records", Type: "integer", JSONPath: ".status.records", Description: "DomainRecords served"},
				{Name: "Serial", Type: "integer", JSONPath: ".status.serial", Description: "The SOA serial served", Priority: 1},
				{Name: "Nameservers", Type: "string", JSONPath: ".status.nameservers[*]", Description: "The NS names to give the registrar", Priority: 1},
			},
		},
	},
	{
		GVK: corev1a3.SchemeGroupVersion.WithKind("DomainRecord"), Plural: "domainrecords", ShortNames: []string{"dr", "domain", "domains"},
		Categories: apoxyCategories, Apply: ApplyBackends, Status: StatusByReconciler,
		goTypes: typesOf[corev1a3.DomainRecord, corev1a3.DomainRecordList](),
		set:     inSet(func(s *Set) *[]*corev1a3.DomainRecord { return &s.DomainRecords }),
		Serving: Serving{
			Validate: validatedWithPeers(corev1a3.ValidateDomainRecord, corev1a3.ValidateDomainRecordPeers),
			Columns: []Column{
				{Name: "FQDN", Type: "string", JSONPath: ".spec.name", Description: "The record's name"},
				{Name: "Type", Type: "string", JSONPath: ".status.type", Description: "The record type served"},
				{Name: "Phase", Type: "string", JSONPath: ".status.phase", Description: "Pending, Issuing, Active or Detached"},
				{Name: "Zone", Type: "string", JSONPath: ".spec.zone", Description: "The DomainZone it belongs to", Priority: 1},
				{Name: "Values", Type: "string", JSONPath: ".status.resolvedValues[*]", Description: "What is served", Priority: 1},
				{Name: "TLS", Type: "string", JSONPath: `.status.conditions[?(@.type=="TLSReady")].reason`, Description: "The certificate: Issued, Issuing, IssueFailed...", Priority: 1},
				{Name: "Cert-Expiry", Type: "string", JSONPath: ".status.certificate.notAfter", Description: "When the certificate expires", Priority: 1},
			},
		},
	},

	{
		// core.apoxy.dev/v1alpha, as the seed's example and the original product have it.
		GVK: corev1a.SchemeGroupVersion.WithKind("TunnelNode"), Plural: "tunnelnodes", ShortNames: []string{"tn", "tunnel", "tunnels"},
		Categories: apoxyCategories, Apply: ApplyBackends, Status: StatusByReconciler,
		goTypes: typesOf[corev1a.TunnelNode, corev1a.TunnelNodeList](),
		set:     inSet(func(s *Set) *[]*corev1a.TunnelNode { return &s.TunnelNodes }),
		Serving: Serving{
			Validate: validatedUpdate(corev1a.ValidateTunnelNode),
			Columns: []Column{
				{Name: "Egress", Type: "boolean", JSONPath: ".spec.egressGateway.enabled", Description: "Agents' outbound traffic may leave through the gateway"},
				{Name: "Agents", Type: "string", JSONPath: ".status.agents[*].name", Description: "Connected agents"},
				{Name: "Prefix", Type: "string", JSONPath: ".status.prefix", Description: "The node's ULA range", Priority: 1},
				{Name: "Addresses", Type: "string", JSONPath: ".status.addresses[*]", Description: "Where agents dial", Priority: 1},
			},
		},
	},

	// Gateway API kinds, re-hosted at gateway.apoxy.dev/v1.
	{
		GVK: gatewayv1.SchemeGroupVersion.WithKind("GatewayClass"), Plural: "gatewayclasses", ShortNames: []string{"gc"},
		Categories: gatewayCategories, Apply: ApplyClasses, Status: StatusByTranslator,
		goTypes: typesOf[gwapiv1.GatewayClass, gwapiv1.GatewayClassList](),
		set:     inSet(func(s *Set) *[]*gwapiv1.GatewayClass { return &s.GatewayClasses }),
		report: inReport(func(r *status.Report) map[status.Key]*gwapiv1.GatewayClassStatus { return r.GatewayClasses },
			func(o *gwapiv1.GatewayClass) *gwapiv1.GatewayClassStatus { return &o.Status }),
	},
	{
		// "gw" is the short name Apoxy users know from the original CLI; "gtw" is upstream's.
		GVK: gatewayv1.SchemeGroupVersion.WithKind("Gateway"), Plural: "gateways", ShortNames: []string{"gw", "gtw"},
		Categories: gatewayCategories, Namespaced: true, Apply: ApplyGateways, Status: StatusByTranslator,
		goTypes: typesOf[gwapiv1.Gateway, gwapiv1.GatewayList](),
		set:     inSet(func(s *Set) *[]*gwapiv1.Gateway { return &s.Gateways }),
		report: inReport(func(r *status.Report) map[status.Key]*gwapiv1.GatewayStatus { return r.Gateways },
			func(o *gwapiv1.Gateway) *gwapiv1.GatewayStatus { return &o.Status }),
	},
	{
		GVK: gatewayv1.SchemeGroupVersion.WithKind("ListenerSet"), Plural: "listenersets", ShortNames: []string{"lset"},
		Categories: gatewayCategories, Namespaced: true, Apply: ApplyListenerSets, Status: StatusByTranslator,
		goTypes: typesOf[gwapiv1.ListenerSet, gwapiv1.ListenerSetList](),
		set:     inSet(func(s *Set) *[]*gwapiv1.ListenerSet { return &s.ListenerSets }),
		report: inReport(func(r *status.Report) map[status.Key]*gwapiv1.ListenerSetStatus { return r.ListenerSets },
			func(o *gwapiv1.ListenerSet) *gwapiv1.ListenerSetStatus { return &o.Status }),
	},
	{
		GVK: gatewayv1.SchemeGroupVersion.WithKind("HTTPRoute"), Plural: "httproutes",
		Categories: gatewayCategories, Namespaced: true, Apply: ApplyRoutes, Status: StatusByTranslator,
		goTypes: typesOf[gwapiv1.HTTPRoute, gwapiv1.HTTPRouteList](),
		set:     inSet(func(s *Set) *[]*gwapiv1.HTTPRoute { return &s.HTTPRoutes }),
		report: inReport(func(r *status.Report) map[status.Key]*gwapiv1.HTTPRouteStatus { return r.HTTPRoutes },
			func(o *gwapiv1.HTTPRoute) *gwapiv1.HTTPRouteStatus { return &o.Status }),
	},
	{
		GVK: gatewayv1.SchemeGroupVersion.WithKind("GRPCRoute"), Plural: "grpcroutes",
		Categories: gatewayCategories, Namespaced: true, Apply: ApplyRoutes, Status: StatusByTranslator,
		goTypes: typesOf[gwapiv1.GRPCRoute, gwapiv1.GRPCRouteList](),
		set:     inSet(func(s *Set) *[]*gwapiv1.GRPCRoute { return &s.GRPCRoutes }),
		report: inReport(func(r *status.Report) map[status.Key]*gwapiv1.GRPCRouteStatus { return r.GRPCRoutes },
			func(o *gwapiv1.GRPCRoute) *gwapiv1.GRPCRouteStatus { return &o.Status }),
	},
	{
		GVK: gatewayv1.SchemeGroupVersion.WithKind("TCPRoute"), Plural: "tcproutes",
		Categories: gatewayCategories, Namespaced: true, Apply: ApplyRoutes, Status: StatusByTranslator,
		goTypes: typesOf[gwapiv1.TCPRoute, gwapiv1.TCPRouteList](),
		set:     inSet(func(s *Set) *[]*gwapiv1.TCPRoute { return &s.TCPRoutes }),
		report: inReport(func(r *status.Report) map[status.Key]*gwapiv1.TCPRouteStatus { return r.TCPRoutes },
			func(o *gwapiv1.TCPRoute) *gwapiv1.TCPRouteStatus { return &o.Status }),
	},
	{
		GVK: gatewayv1.SchemeGroupVersion.WithKind("UDPRoute"), Plural: "udproutes",
		Categories: gatewayCategories, Namespaced: true, Apply: ApplyRoutes, Status: StatusByTranslator,
		goTypes: typesOf[gwapiv1.UDPRoute, gwapiv1.UDPRouteList](),
		set:     inSet(func(s *Set) *[]*gwapiv1.UDPRoute { return &s.UDPRoutes }),
		report: inReport(func(r *status.Report) map[status.Key]*gwapiv1.UDPRouteStatus { return r.UDPRoutes },
			func(o *gwapiv1.UDPRoute) *gwapiv1.UDPRouteStatus { return &o.Status }),
	},
	{
		GVK: gatewayv1.SchemeGroupVersion.WithKind("TLSRoute"), Plural: "tlsroutes",
		Categories: gatewayCategories, Namespaced: true, Apply: ApplyRoutes, Status: StatusByTranslator,
		goTypes: typesOf[gwapiv1.TLSRoute, gwapiv1.TLSRouteList](),
		set:     inSet(func(s *Set) *[]*gwapiv1.TLSRoute { return &s.TLSRoutes }),
		report: inReport(func(r *status.Report) map[status.Key]*gwapiv1.TLSRouteStatus { return r.TLSRoutes },
			func(o *gwapiv1.TLSRoute) *gwapiv1.TLSRouteStatus { return &o.Status }),
	},
	{
		// The type has no status (nor has the upstream CRD a subresource); /status is served
		// anyway, as it always was, so discovery stays the same.
		GVK: gatewayv1.SchemeGroupVersion.WithKind("ReferenceGrant"), Plural: "referencegrants", ShortNames: []string{"refgrant"},
		Categories: gatewayCategories, Namespaced: true, Apply: ApplyGrants, Status: StatusByClients,
		goTypes: typesOf[gwapiv1.ReferenceGrant, gwapiv1.ReferenceGrantList](),
		set:     inSet(func(s *Set) *[]*gwapiv1.ReferenceGrant { return &s.ReferenceGrants }),
	},
	{
		GVK: gatewayv1.SchemeGroupVersion.WithKind("BackendTLSPolicy"), Plural: "backendtlspolicies", ShortNames: []string{"btlspolicy"},
		Categories: gatewayCategories, Namespaced: true, Apply: ApplyGrants, Status: StatusByTranslator,
		goTypes: typesOf[gwapiv1.BackendTLSPolicy, gwapiv1.BackendTLSPolicyList](),
		set:     inSet(func(s *Set) *[]*gwapiv1.BackendTLSPolicy { return &s.BackendTLSPolicies }),
		report: inReport(func(r *status.Report) map[status.Key]*gwapiv1.PolicyStatus { return r.BackendTLSPolicies },
			func(o *gwapiv1.BackendTLSPolicy) *gwapiv1.PolicyStatus { return &o.Status }),
	},

	// Policies, which attach to Gateways, listeners, routes and route rules.
	{
		GVK: policyv1a1.SchemeGroupVersion.WithKind("TrafficPolicy"), Plural: "trafficpolicies", ShortNames: []string{"tp"},
		Categories: apoxyCategories, Namespaced: true, Apply: ApplyPolicies, Status: StatusByTranslator,
		goTypes: typesOf[policyv1a1.TrafficPolicy, policyv1a1.TrafficPolicyList](),
		set:     inSet(func(s *Set) *[]*policyv1a1.TrafficPolicy { return &s.TrafficPolicies }),
		report: inReport(func(r *status.Report) map[status.Key]*gwapiv1.PolicyStatus { return r.TrafficPolicies },
			func(o *policyv1a1.TrafficPolicy) *gwapiv1.PolicyStatus { return &o.Status }),
		Serving: Serving{
			Validate: validated(policyv1a1.ValidateTrafficPolicy),
			Columns:  policyColumns,
		},
	},
	{
		GVK: policyv1a1.SchemeGroupVersion.WithKind("AuthPolicy"), Plural: "authpolicies", ShortNames: []string{"ap"},
		Categories: apoxyCategories, Namespaced: true, Apply: ApplyPolicies, Status: StatusByTranslator,
		goTypes: typesOf[policyv1a1.AuthPolicy, policyv1a1.AuthPolicyList](),
		set:     inSet(func(s *Set) *[]*policyv1a1.AuthPolicy { return &s.AuthPolicies }),
		report: inReport(func(r *status.Report) map[status.Key]*gwapiv1.PolicyStatus { return r.AuthPolicies },
			func(o *policyv1a1.AuthPolicy) *gwapiv1.PolicyStatus { return &o.Status }),
		Serving: Serving{
			Validate: validated(policyv1a1.ValidateAuthPolicy),
			Columns:  policyColumns,
		},
	},

	// Served at the server root.
	{
		GVK: platformv1a1.SchemeGroupVersion.WithKind("Project"), Plural: "projects", ShortNames: []string{"proj"},
		Root: true, Apply: ApplyNamespaces, Status: StatusByServer,
		goTypes: typesOf[platformv1a1.Project, platformv1a1.ProjectList](),
		Serving: Serving{
			Validate: validated(platformv1a1.ValidateProject),
			Columns: []Column{
				{Name: "Ready", Type: "string", JSONPath: `.status.conditions[?(@.type=="Ready")].status`, Description: "Whether the project's API is served"},
				{Name: "API-Path", Type: "string", JSONPath: ".status.apiPath", Description: "Path of the project's API"},
			},
		},
	},
}
