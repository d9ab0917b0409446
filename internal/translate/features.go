package translate

import (
	"cmp"
	"slices"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/gateway-api/pkg/features"
)

// supportedFeatures lists the Gateway API conformance features this gateway
// implements. It is published in GatewayClass status.supportedFeatures, so
// users (and the conformance driver in test/conformance) can see what the
// class supports without reading our docs. Add a feature here only when its
// upstream conformance tests pass.
var supportedFeatures = []features.FeatureName{
	features.SupportGateway, features.SupportGatewayPort8080, features.SupportGatewayHTTPListenerIsolation,
	features.SupportGatewayHTTPSListenerDetectMisdirectedRequests, features.SupportGatewayAddressEmpty,
	features.SupportGatewayStaticAddresses,
	features.SupportHTTPRoute, features.SupportReferenceGrant,
	features.SupportHTTPRouteQueryParamMatching, features.SupportHTTPRouteMethodMatching,
	features.SupportHTTPRouteResponseHeaderModification, features.SupportHTTPRouteBackendRequestHeaderModification,
	features.SupportHTTPRoutePortRedirect, features.SupportHTTPRouteSchemeRedirect, features.SupportHTTPRoutePathRedirect,
	features.SupportHTTPRouteHostRewrite, features.SupportHTTPRoutePathRewrite,
	features.SupportHTTPRoute303RedirectStatusCode, features.SupportHTTPRoute307RedirectStatusCode,
	features.SupportHTTPRoute308RedirectStatusCode,
	features.SupportHTTPRouteRequestTimeout, features.SupportHTTPRouteBackendTimeout,
	features.SupportHTTPRouteBackendProtocolH2C, features.SupportHTTPRouteBackendProtocolWebSocket,
	features.SupportHTTPRouteCORS, features.SupportHTTPRouteParentRefPort,
	features.SupportHTTPRouteRetry, features.SupportHTTPRouteRetryBackendTimeout,
	features.SupportHTTPRouteRetryConnectionError,
	features.SupportHTTPRouteNamedRouteRule, features.SupportHTTPRouteDestinationPortMatching,
	features.SupportHTTPRouteRequestMirror, features.SupportHTTPRouteRequestMultipleMirrors,
	features.SupportHTTPRouteRequestPercentageMirror,
	features.SupportBackendTLSPolicy, features.SupportBackendTLSPolicySANValidation,
	features.SupportGatewayBackendClientCertificate, features.SupportGatewayFrontendClientCertificateValidation,
	features.SupportGatewayFrontendClientCertificateValidationInsecureFallback,
	features.SupportListenerSet,
	features.SupportGRPCRoute, features.SupportGRPCRouteNamedRouteRule,
	features.SupportTCPRoute, features.SupportUDPRoute, features.SupportTLSRoute,
	features.SupportTLSRouteModeTerminate, features.SupportTLSRouteModeMixed,
}

// SupportedFeatures returns the features published on our GatewayClasses,
// sorted by name as the Gateway API requires.
func SupportedFeatures() []gwapiv1.SupportedFeature {
	out := make([]gwapiv1.SupportedFeature, 0, len(supportedFeatures))
	for _, f := range supportedFeatures {
		out = append(out, gwapiv1.SupportedFeature{Name: gwapiv1.FeatureName(f)})
	}
	slices.SortFunc(out, func(a, b gwapiv1.SupportedFeature) int { return cmp.Compare(a.Name, b.Name) })
	return slices.CompactFunc(out, func(a, b gwapiv1.SupportedFeature) bool { return a.Name == b.Name })
}
