package v1alpha1

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

// route is a spec prefix targeting one HTTPRoute; most cases add one block to it.
const route = "targetRefs: [{kind: HTTPRoute, name: app}]\n"

// decode reads a spec (strict, as the API server decodes with fieldValidation=Strict) and
// applies the defaults, as the API server does before validating.
func decode(t *testing.T, spec string) *TrafficPolicy {
	t.Helper()
	tp := &TrafficPolicy{}
	if err := yaml.UnmarshalStrict([]byte(spec), &tp.Spec); err != nil {
		t.Fatalf("decode: %v", err)
	}
	SetDefaultsTrafficPolicy(tp)
	return tp
}

func paths(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Field)
	}
	return out
}

// TestValidateTrafficPolicy has one case per validation rule (design §2.1, §2.3 and §5), each
// asserting the exact field paths named.
func TestValidateTrafficPolicy(t *testing.T) {
	rule := func(r string) string {
		return route + "rateLimit:\n  rules:\n  - {name: r, limit: {requests: 5, unit: Minute}, " + r + "}\n"
	}
	match := func(m string) string { return rule("match: {" + m + "}") }
	lb := func(b string) string { return route + "loadBalancer: {" + b + "}\n" }
	fault := func(b string) string { return route + "faultInjection: {" + b + "}\n" }
	n := func(count int, item string) string { return strings.TrimSuffix(strings.Repeat(item+", ", count), ", ") }
	rules := func(count int) string {
		var b strings.Builder
		for i := range count {
			b.WriteString("  - {name: r" + string(rune('a'+i%26)) + strings.Repeat("x", i/26) + ", limit: {requests: 1, unit: Second}}\n")
		}
		return route + "rateLimit:\n  rules:\n" + b.String()
	}
	tests := []struct {
		name string
		spec string
		want []string
	}{
		// Valid policies.
		{"timeouts only", route + "timeouts: {request: 30s}", nil},
		{"every block", route + `rateLimit: {rules: [{name: per-ip, countBy: [{clientIP: {}}], limit: {requests: 5, unit: Minute}}]}
retry: {attempts: 3, budget: {percent: 20}}
timeouts: {request: 10s, backendRequest: 2s}
circuitBreaker: {maxConnections: 1, maxRequestsPerConnection: 0}
outlierDetection: {consecutiveGatewayErrors: 3}
loadBalancer: {type: RingHash, hash: {header: {name: x-user}}}
faultInjection: {abort: {grpcStatus: Unavailable}}`, nil},
		{"every block disabled", route + "rateLimit: {disabled: true}\nretry: {disabled: true}\ntimeouts: {disabled: true}\ncircuitBreaker: {disabled: true}\noutlierDetection: {disabled: true}\nloadBalancer: {disabled: true}\nfaultInjection: {disabled: true}", nil},
		{"upstream group", "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: default}]\ntimeouts: {}", nil},
		{"same target, two sections", "targetRefs: [{kind: Gateway, name: g, sectionName: http}, {kind: Gateway, name: g, sectionName: https}, {kind: Gateway, name: g}]\ntimeouts: {}", nil},
		{"override on gateways", "targetRefs: [{kind: Gateway, name: a}, {kind: Gateway, name: b}]\nstrategy: Override\ntimeouts: {}", nil},
		{"request 0s leaves backendRequest free", route + "timeouts: {request: 0s, backendRequest: 5s}", nil},
		{"long base ejection, max follows", route + "outlierDetection: {baseEjectionTime: 10m}", nil},
		{"grpc status by number", fault("abort: {grpcStatus: 14}"), nil},
		{"requests 0 denies all", route + "rateLimit: {rules: [{name: deny, limit: {requests: 0, unit: Second}}]}", nil},
		{"shadow rule with every key part", rule("shadow: true, countBy: [{clientIP: {ipv6PrefixLength: 56}}, {header: {name: x-api-key}}, {queryParam: {name: key}}, {jwtClaim: {name: sub}}]"), nil},

		// targetRefs.
		{"no targetRefs", "timeouts: {}", []string{"spec.targetRefs"}},
		{"17 targetRefs", "targetRefs: [" + n(17, "{kind: Gateway, name: g, sectionName: s}") + "]\ntimeouts: {}", append([]string{"spec.targetRefs"}, dups(16, "spec.targetRefs")...)},
		{"duplicate targetRef", "targetRefs: [{kind: HTTPRoute, name: a, sectionName: x}, {group: gateway.networking.k8s.io, kind: HTTPRoute, name: a, sectionName: x}]\ntimeouts: {}", []string{"spec.targetRefs[1]"}},
		{"other group", "targetRefs: [{group: gateway.envoyproxy.io, kind: HTTPRoute, name: a}]\ntimeouts: {}", []string{"spec.targetRefs[0].group"}},
		{"TCPRoute target", "targetRefs: [{kind: TCPRoute, name: a}]\ntimeouts: {}", []string{"spec.targetRefs[0].kind"}},
		{"Service target", "targetRefs: [{group: '', kind: Service, name: a}]\ntimeouts: {}", []string{"spec.targetRefs[0].kind"}},
		{"target without name", "targetRefs: [{kind: Gateway}]\ntimeouts: {}", []string{"spec.targetRefs[0].name"}},
		{"target bad name", "targetRefs: [{kind: Gateway, name: Bad_Name}]\ntimeouts: {}", []string{"spec.targetRefs[0].name"}},
		{"target bad sectionName", "targetRefs: [{kind: Gateway, name: g, sectionName: 'a/b'}]\ntimeouts: {}", []string{"spec.targetRefs[0].sectionName"}},

		// strategy and blocks.
		{"override with a route target", "targetRefs: [{kind: Gateway, name: g}, {kind: HTTPRoute, name: r}]\nstrategy: Override\ntimeouts: {}", []string{"spec.strategy"}},
		{"unknown strategy", route + "strategy: Merge\ntimeouts: {}", []string{"spec.strategy"}},
		{"policy sets no feature", route, []string{"spec"}},
		{"disabled block with settings", route + "retry: {disabled: true, attempts: 3, backoff: {baseInterval: 1s}}", []string{"spec.retry.attempts", "spec.retry.backoff"}},
		{"disabled rateLimit with rules", route + "rateLimit: {disabled: true, rules: [{name: a, limit: {requests: 1, unit: Second}}]}", []string{"spec.rateLimit.rules"}},

		// rateLimit.
		{"no rules", route + "rateLimit: {failureMode: FailClosed}", []string{"spec.rateLimit.rules"}},
		{"65 rules", rules(65), []string{"spec.rateLimit.rules"}},
		{"rule name not a DNS label", route + "rateLimit: {rules: [{name: Per_IP, limit: {requests: 1, unit: Second}}]}", []string{"spec.rateLimit.rules[0].name"}},
		{"rule without name", route + "rateLimit: {rules: [{limit: {requests: 1, unit: Second}}]}", []string{"spec.rateLimit.rules[0].name"}},
		{"duplicate rule names", route + "rateLimit: {rules: [{name: a, limit: {requests: 1, unit: Second}}, {name: a, limit: {requests: 2, unit: Second}}]}", []string{"spec.rateLimit.rules[1].name"}},
		{"maxTrackedKeys with Global", rule("scope: Global, maxTrackedKeys: 10"), []string{"spec.rateLimit.rules[0].maxTrackedKeys"}},
		{"maxTrackedKeys 0", rule("maxTrackedKeys: 0"), []string{"spec.rateLimit.rules[0].maxTrackedKeys"}},
		{"maxTrackedKeys over the cap", rule("maxTrackedKeys: 10000001"), []string{"spec.rateLimit.rules[0].maxTrackedKeys"}},
		{"unknown scope", rule("scope: Cluster"), []string{"spec.rateLimit.rules[0].scope"}},
		{"unknown counters", rule("counters: PerGateway"), []string{"spec.rateLimit.rules[0].counters"}},
		{"unknown failureMode", route + "rateLimit: {failureMode: Open, rules: [{name: a, limit: {requests: 1, unit: Second}}]}", []string{"spec.rateLimit.failureMode"}},
		{"unknown responseHeaders", route + "rateLimit: {responseHeaders: Draft, rules: [{name: a, limit: {requests: 1, unit: Second}}]}", []string{"spec.rateLimit.responseHeaders"}},
		{"response status 200", route + "rateLimit: {response: {statusCode: 200}, rules: [{name: a, limit: {requests: 1, unit: Second}}]}", []string{"spec.rateLimit.response.statusCode"}},
		{"limit missing", route + "rateLimit: {rules: [{name: a}]}", []string{"spec.rateLimit.rules[0].limit"}},
		{"requests missing", route + "rateLimit: {rules: [{name: a, limit: {unit: Second}}]}", []string{"spec.rateLimit.rules[0].limit.requests"}},
		{"requests negative", route + "rateLimit: {rules: [{name: a, limit: {requests: -1, unit: Second}}]}", []string{"spec.rateLimit.rules[0].limit.requests"}},
		{"requests over uint32", route + "rateLimit: {rules: [{name: a, limit: {requests: 4294967296, unit: Second}}]}", []string{"spec.rateLimit.rules[0].limit.requests"}},
		{"unit missing", route + "rateLimit: {rules: [{name: a, limit: {requests: 1}}]}", []string{"spec.rateLimit.rules[0].limit.unit"}},
		{"unit Week", route + "rateLimit: {rules: [{name: a, limit: {requests: 1, unit: Week}}]}", []string{"spec.rateLimit.rules[0].limit.unit"}},
		{"missingKey without countBy", rule("missingKey: Skip"), []string{"spec.rateLimit.rules[0].missingKey"}},
		{"unknown missingKey", rule("countBy: [{method: {}}], missingKey: Drop"), []string{"spec.rateLimit.rules[0].missingKey"}},
		{"5 countBy parts", rule("countBy: [{clientIP: {}}, {method: {}}, {path: {}}, {header: {name: a}}, {header: {name: b}}]"), []string{"spec.rateLimit.rules[0].countBy"}},
		{"duplicate countBy part", rule("countBy: [{header: {name: X-Key}}, {header: {name: x-key}}]"), []string{"spec.rateLimit.rules[0].countBy[1]"}},
		{"countBy part with two sources", rule("countBy: [{clientIP: {}, method: {}}]"), []string{"spec.rateLimit.rules[0].countBy[0]"}},
		{"empty countBy part", rule("countBy: [{}]"), []string{"spec.rateLimit.rules[0].countBy[0]"}},
		{"ipv4 prefix 33", rule("countBy: [{clientIP: {ipv4PrefixLength: 33}}]"), []string{"spec.rateLimit.rules[0].countBy[0].clientIP.ipv4PrefixLength"}},
		{"ipv6 prefix 0", rule("countBy: [{clientIP: {ipv6PrefixLength: 0}}]"), []string{"spec.rateLimit.rules[0].countBy[0].clientIP.ipv6PrefixLength"}},
		{"countBy bad header", rule("countBy: [{header: {name: 'x key'}}]"), []string{"spec.rateLimit.rules[0].countBy[0].header.name"}},
		{"countBy claim without name", rule("countBy: [{jwtClaim: {name: ''}}]"), []string{"spec.rateLimit.rules[0].countBy[0].jwtClaim.name"}},
		{"17 exempt", route + "rateLimit: {exempt: [" + n(17, "{methods: [GET]}") + "], rules: [{name: a, limit: {requests: 1, unit: Second}}]}", []string{"spec.rateLimit.exempt"}},
		{"empty exempt match", route + "rateLimit: {exempt: [{}], rules: [{name: a, limit: {requests: 1, unit: Second}}]}", []string{"spec.rateLimit.exempt[0]"}},
		{"bad exempt CIDR", route + "rateLimit: {exempt: [{clientCIDRs: [10.0.0.0/33]}], rules: [{name: a, limit: {requests: 1, unit: Second}}]}", []string{"spec.rateLimit.exempt[0].clientCIDRs[0]"}},

		// Request matches.
		{"path regex does not compile", match("path: {type: RegularExpression, value: '/a(('}"), []string{"spec.rateLimit.rules[0].match.path.value"}},
		{"relative path", match("path: {value: login}"), []string{"spec.rateLimit.rules[0].match.path.value"}},
		{"unknown path type", match("path: {type: Prefix, value: /a}"), []string{"spec.rateLimit.rules[0].match.path.type"}},
		{"header regex does not compile", match("headers: [{name: x, type: RegularExpression, value: '[a'}]"), []string{"spec.rateLimit.rules[0].match.headers[0].value"}},
		{"header Present with value", match("headers: [{name: x, type: Present, value: y}]"), []string{"spec.rateLimit.rules[0].match.headers[0].value"}},
		{"header Exact without value", match("headers: [{name: x}]"), []string{"spec.rateLimit.rules[0].match.headers[0].value"}},
		{"bad header name", match("headers: [{name: 'a b', value: y}]"), []string{"spec.rateLimit.rules[0].match.headers[0].name"}},
		{"17 headers", match("headers: [" + n(17, "{name: x, type: Present}") + "]"), []string{"spec.rateLimit.rules[0].match.headers"}},
		{"17 query params", match("queryParams: [" + n(17, "{name: x, type: Present}") + "]"), []string{"spec.rateLimit.rules[0].match.queryParams"}},
		{"query param without name", match("queryParams: [{type: Present}]"), []string{"spec.rateLimit.rules[0].match.queryParams[0].name"}},
		{"33 client CIDRs", match("clientCIDRs: [" + n(33, "10.0.0.0/8") + "]"), []string{"spec.rateLimit.rules[0].match.clientCIDRs"}},
		{"bad CIDR", match("clientCIDRs: [10.0.0.1]"), []string{"spec.rateLimit.rules[0].match.clientCIDRs[0]"}},
		{"unknown method", match("methods: [FETCH]"), []string{"spec.rateLimit.rules[0].match.methods[0]"}},
		{"duplicate method", match("methods: [GET, GET]"), []string{"spec.rateLimit.rules[0].match.methods[1]"}},
		{"claim without values", match("jwtClaims: [{name: plan, values: []}]"), []string{"spec.rateLimit.rules[0].match.jwtClaims[0].values"}},

		// retry.
		{"attempts 11", route + "retry: {attempts: 11}", []string{"spec.retry.attempts"}},
		{"attempts -1", route + "retry: {attempts: -1}", []string{"spec.retry.attempts"}},
		{"retry on 200", route + "retry: {retryOn: {statusCodes: [200]}}", []string{"spec.retry.retryOn.statusCodes[0]"}},
		{"retry on 503 twice", route + "retry: {retryOn: {statusCodes: [503, 503]}}", []string{"spec.retry.retryOn.statusCodes[1]"}},
		{"unknown condition", route + "retry: {retryOn: {conditions: [5xx]}}", []string{"spec.retry.retryOn.conditions[0]"}},
		{"unknown gRPC code", route + "retry: {retryOn: {grpcCodes: [NotFound]}}", []string{"spec.retry.retryOn.grpcCodes[0]"}},
		{"unknown retry method", route + "retry: {methods: [get]}", []string{"spec.retry.methods[0]"}},
		{"maxInterval under base", route + "retry: {backoff: {baseInterval: 100ms, maxInterval: 50ms}}", []string{"spec.retry.backoff.maxInterval"}},
		{"baseInterval 0s", route + "retry: {backoff: {baseInterval: 0s, maxInterval: 1s}}", []string{"spec.retry.backoff.baseInterval"}},
		{"baseInterval not a Gateway API duration", route + "retry: {backoff: {baseInterval: 1.5s}}", []string{"spec.retry.backoff.baseInterval"}},
		{"budget percent 101", route + "retry: {budget: {percent: 101}}", []string{"spec.retry.budget.percent"}},
		{"budget interval 2h", route + "retry: {budget: {interval: 2h}}", []string{"spec.retry.budget.interval"}},
		{"budget interval 500ms", route + "retry: {budget: {interval: 500ms}}", []string{"spec.retry.budget.interval"}},
		{"min retry rate interval 0s", route + "retry: {budget: {minRetryRate: {count: 1, interval: 0s}}}", []string{"spec.retry.budget.minRetryRate.interval"}},
		{"min retry rate count -1", route + "retry: {budget: {minRetryRate: {count: -1}}}", []string{"spec.retry.budget.minRetryRate.count"}},

		// timeouts.
		{"backendRequest over request", route + "timeouts: {request: 1s, backendRequest: 5s}", []string{"spec.timeouts.backendRequest"}},
		{"connect 0s", route + "timeouts: {connect: 0s}", []string{"spec.timeouts.connect"}},
		{"connectionIdle 0s", route + "timeouts: {connectionIdle: 0s}", []string{"spec.timeouts.connectionIdle"}},
		{"request without unit", route + "timeouts: {request: '10'}", []string{"spec.timeouts.request"}},
		{"negative idle", route + "timeouts: {idle: -1s}", []string{"spec.timeouts.idle"}},
		{"microseconds", route + "timeouts: {maxStreamDuration: 10us}", []string{"spec.timeouts.maxStreamDuration"}},

		// circuitBreaker.
		{"maxConnections 0", route + "circuitBreaker: {maxConnections: 0}", []string{"spec.circuitBreaker.maxConnections"}},
		{"maxPendingRequests 0", route + "circuitBreaker: {maxPendingRequests: 0}", []string{"spec.circuitBreaker.maxPendingRequests"}},
		{"maxParallelRequests 0", route + "circuitBreaker: {maxParallelRequests: 0}", []string{"spec.circuitBreaker.maxParallelRequests"}},
		{"maxParallelRetries 0", route + "circuitBreaker: {maxParallelRetries: 0}", []string{"spec.circuitBreaker.maxParallelRetries"}},
		{"maxRequestsPerConnection -1", route + "circuitBreaker: {maxRequestsPerConnection: -1}", []string{"spec.circuitBreaker.maxRequestsPerConnection"}},

		// outlierDetection.
		{"maxEjectionTime under base", route + "outlierDetection: {baseEjectionTime: 1m, maxEjectionTime: 30s}", []string{"spec.outlierDetection.maxEjectionTime"}},
		{"maxEjectionPercent 0", route + "outlierDetection: {maxEjectionPercent: 0}", []string{"spec.outlierDetection.maxEjectionPercent"}},
		{"maxEjectionPercent 101", route + "outlierDetection: {maxEjectionPercent: 101}", []string{"spec.outlierDetection.maxEjectionPercent"}},
		{"outlier interval 0s", route + "outlierDetection: {interval: 0s}", []string{"spec.outlierDetection.interval"}},
		{"negative consecutive5xx", route + "outlierDetection: {consecutive5xx: -1}", []string{"spec.outlierDetection.consecutive5xx"}},
		{"negative consecutiveGatewayErrors", route + "outlierDetection: {consecutiveGatewayErrors: -1}", []string{"spec.outlierDetection.consecutiveGatewayErrors"}},

		// loadBalancer.
		{"unknown type", lb("type: WeightedRandom"), []string{"spec.loadBalancer.type"}},
		{"choiceCount 11", lb("leastRequest: {choiceCount: 11}"), []string{"spec.loadBalancer.leastRequest.choiceCount"}},
		{"choiceCount 1", lb("leastRequest: {choiceCount: 1}"), []string{"spec.loadBalancer.leastRequest.choiceCount"}},
		{"leastRequest with RoundRobin", lb("type: RoundRobin, leastRequest: {choiceCount: 3}"), []string{"spec.loadBalancer.leastRequest"}},
		{"RingHash without hash", lb("type: RingHash"), []string{"spec.loadBalancer.hash"}},
		{"Maglev without hash", lb("type: Maglev"), []string{"spec.loadBalancer.hash"}},
		{"hash with RoundRobin", lb("type: RoundRobin, hash: {sourceIP: {}}"), []string{"spec.loadBalancer.hash"}},
		{"hash with two sources", lb("type: Maglev, hash: {sourceIP: {}, header: {name: x}}"), []string{"spec.loadBalancer.hash"}},
		{"hash with no source", lb("type: Maglev, hash: {}"), []string{"spec.loadBalancer.hash"}},
		{"ringHash with Maglev", lb("type: Maglev, hash: {sourceIP: {}}, ringHash: {minRingSize: 1}"), []string{"spec.loadBalancer.ringHash"}},
		{"ring min over max", lb("type: RingHash, hash: {sourceIP: {}}, ringHash: {minRingSize: 4096, maxRingSize: 2048}"), []string{"spec.loadBalancer.ringHash.minRingSize"}},
		{"ring max over the cap", lb("type: RingHash, hash: {sourceIP: {}}, ringHash: {maxRingSize: 8388609}"), []string{"spec.loadBalancer.ringHash.maxRingSize"}},
		{"maglev table not prime", lb("type: Maglev, hash: {sourceIP: {}}, maglev: {tableSize: 65536}"), []string{"spec.loadBalancer.maglev.tableSize"}},
		{"maglev table too large", lb("type: Maglev, hash: {sourceIP: {}}, maglev: {tableSize: 2147483647}"), []string{"spec.loadBalancer.maglev.tableSize"}},
		{"maglev with RingHash", lb("type: RingHash, hash: {sourceIP: {}}, maglev: {tableSize: 65537}"), []string{"spec.loadBalancer.maglev"}},
		{"slowStart with Maglev", lb("type: Maglev, hash: {sourceIP: {}}, slowStart: {window: 30s}"), []string{"spec.loadBalancer.slowStart"}},
		{"slowStart window 0s", lb("type: RoundRobin, slowStart: {window: 0s}"), []string{"spec.loadBalancer.slowStart.window"}},
		{"slowStart without window", lb("slowStart: {}"), []string{"spec.loadBalancer.slowStart.window"}},
		{"cookie SameSite None without Secure", lb("type: RingHash, hash: {cookie: {name: srv, sameSite: None}}"), []string{"spec.loadBalancer.hash.cookie.sameSite"}},
		{"cookie bad name", lb("type: RingHash, hash: {cookie: {name: 'a;b'}}"), []string{"spec.loadBalancer.hash.cookie.name"}},
		{"cookie ttl 0s", lb("type: RingHash, hash: {cookie: {name: srv, ttl: 0s}}"), []string{"spec.loadBalancer.hash.cookie.ttl"}},
		{"cookie relative path", lb("type: RingHash, hash: {cookie: {name: srv, path: cart}}"), []string{"spec.loadBalancer.hash.cookie.path"}},

		// faultInjection.
		{"neither delay nor abort", fault("match: {methods: [GET]}"), []string{"spec.faultInjection"}},
		{"fixedDelay 0s", fault("delay: {fixedDelay: 0s}"), []string{"spec.faultInjection.delay.fixedDelay"}},
		{"fixedDelay missing", fault("delay: {percent: 10}"), []string{"spec.faultInjection.delay.fixedDelay"}},
		{"abort with both statuses", fault("abort: {httpStatus: 503, grpcStatus: Unavailable}"), []string{"spec.faultInjection.abort.grpcStatus"}},
		{"abort with no status", fault("abort: {percent: 5}"), []string{"spec.faultInjection.abort"}},
		{"abort status 200", fault("abort: {httpStatus: 200}"), []string{"spec.faultInjection.abort.httpStatus"}},
		{"grpc status 17", fault("abort: {grpcStatus: 17}"), []string{"spec.faultInjection.abort.grpcStatus"}},
		{"grpc status 0", fault("abort: {grpcStatus: 0}"), []string{"spec.faultInjection.abort.grpcStatus"}},
		{"grpc status unknown name", fault("abort: {grpcStatus: Broken}"), []string{"spec.faultInjection.abort.grpcStatus"}},
		{"percent and fraction", fault("delay: {fixedDelay: 1s, percent: 10, fraction: {numerator: 1}}"), []string{"spec.faultInjection.delay.fraction"}},
		{"percent 101", fault("abort: {httpStatus: 503, percent: 101}"), []string{"spec.faultInjection.abort.percent"}},
		{"numerator over denominator", fault("abort: {httpStatus: 503, fraction: {numerator: 11, denominator: 10}}"), []string{"spec.faultInjection.abort.fraction.numerator"}},
		{"numerator over default denominator", fault("abort: {httpStatus: 503, fraction: {numerator: 101}}"), []string{"spec.faultInjection.abort.fraction.numerator"}},
		{"denominator 0", fault("abort: {httpStatus: 503, fraction: {numerator: 0, denominator: 0}}"), []string{"spec.faultInjection.abort.fraction.denominator"}},
		{"negative numerator", fault("abort: {httpStatus: 503, fraction: {numerator: -1}}"), []string{"spec.faultInjection.abort.fraction.numerator"}},
		{"fault match bad regex", fault("match: {headers: [{name: x-chaos, type: RegularExpression, value: '('}]}, abort: {httpStatus: 503}"), []string{"spec.faultInjection.match.headers[0].value"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, ValidateTrafficPolicy(decode(t, tc.spec)), tc.want)
		})
	}
}

// checkErrors fails unless errs name exactly the fields want, in order, and every error but
// the self-explaining kinds (unsupported value, duplicate, too many) says how to fix it.
func checkErrors(t *testing.T, errs field.ErrorList, want []string) {
	t.Helper()
	if got := paths(errs); !reflect.DeepEqual(got, want) {
		t.Errorf("errors on %v, want %v:\n%v", got, want, errs)
	}
	for _, e := range errs {
		if e.Detail == "" && e.Type != field.ErrorTypeNotSupported && e.Type != field.ErrorTypeDuplicate && e.Type != field.ErrorTypeTooMany {
			t.Errorf("%s: no message saying how to fix it", e.Field)
		}
	}
}

// TestRejectedByTheType: values the Go types cannot hold are refused when decoding (400 from
// the API server with strict field validation), before validation runs.
func TestRejectedByTheType(t *testing.T) {
	for name, spec := range map[string]string{
		"float percent":               route + "faultInjection: {abort: {httpStatus: 503, percent: 10.5}}",
		"target in another namespace": "targetRefs: [{kind: HTTPRoute, name: a, namespace: other}]\ntimeouts: {}",
		"unknown block":               route + "cors: {}",
	} {
		t.Run(name, func(t *testing.T) {
			var s TrafficPolicySpec
			if err := yaml.UnmarshalStrict([]byte(spec), &s); err == nil {
				t.Errorf("decoded %q", spec)
			}
		})
	}
}

// TestDefaults: defaults fill only blocks that are set (and not disabled), are persisted as
// values, are idempotent, and keep explicit empty retry lists empty.
func TestDefaults(t *testing.T) {
	t.Run("absent blocks stay absent", func(t *testing.T) {
		tp := decode(t, route+"timeouts: {request: 30s}")
		s := tp.Spec
		if s.RateLimit != nil || s.Retry != nil || s.CircuitBreaker != nil || s.OutlierDetection != nil || s.LoadBalancer != nil || s.FaultInjection != nil {
			t.Errorf("absent blocks were filled: %+v", s)
		}
		want := Timeouts{Request: dur("30s"), Connect: dur("10s"), Idle: dur("5m"), ConnectionIdle: dur("1m")}
		if !reflect.DeepEqual(*s.Timeouts, want) {
			t.Errorf("timeouts = %s, want %s", js(s.Timeouts), js(want))
		}
		if s.Strategy != StrategyDefault || s.TargetRefs[0].Group != "gateway.apoxy.dev" {
			t.Errorf("strategy %q, group %q", s.Strategy, s.TargetRefs[0].Group)
		}
	})
	t.Run("disabled blocks stay bare", func(t *testing.T) {
		tp := decode(t, route+"rateLimit: {disabled: true}\nretry: {disabled: true}\nloadBalancer: {disabled: true}\noutlierDetection: {disabled: true}\ntimeouts: {disabled: true}")
		s := tp.Spec
		for name, b := range map[string]any{"rateLimit": s.RateLimit, "retry": s.Retry, "loadBalancer": s.LoadBalancer, "outlierDetection": s.OutlierDetection, "timeouts": s.Timeouts} {
			v := reflect.ValueOf(b).Elem()
			bare := reflect.New(v.Type()).Elem()
			bare.FieldByName("Disabled").SetBool(true)
			if !reflect.DeepEqual(v.Interface(), bare.Interface()) {
				t.Errorf("disabled %s got defaults: %s", name, js(b))
			}
		}
		if errs := ValidateTrafficPolicy(tp); len(errs) > 0 {
			t.Error(errs)
		}
	})
	t.Run("group normalised", func(t *testing.T) {
		tp := decode(t, "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: g}]\ntimeouts: {}")
		if g := tp.Spec.TargetRefs[0].Group; g != "gateway.apoxy.dev" {
			t.Errorf("group = %q", g)
		}
	})
	for name, tc := range map[string]struct{ spec, want string }{
		"rateLimit": {
			route + "rateLimit: {rules: [{name: a, countBy: [{clientIP: {}}], limit: {requests: 1, unit: Second}}, {name: b, scope: Global, limit: {requests: 1, unit: Day}}]}",
			`{"inherit":true,"failureMode":"FailOpen","responseHeaders":"XRateLimit","response":{"statusCode":429},"rules":[` +
				`{"name":"a","scope":"Local","countBy":[{"clientIP":{"ipv4PrefixLength":32,"ipv6PrefixLength":64}}],"missingKey":"Shared","limit":{"requests":1,"unit":"Second"},"counters":"PerRoute","maxTrackedKeys":100000},` +
				`{"name":"b","scope":"Global","limit":{"requests":1,"unit":"Day"},"counters":"PerRoute"}]}`,
		},
		"retry": {
			route + "retry: {}",
			`{"attempts":2,"retryOn":{"conditions":["ConnectFailure","RefusedStream"],"statusCodes":[503]},"methods":["GET","HEAD","OPTIONS","PUT","DELETE","TRACE"],"backoff":{"baseInterval":"25ms","maxInterval":"250ms"}}`,
		},
		"retry budget and a longer base": {
			route + "retry: {backoff: {baseInterval: 1500ms}, budget: {}}",
			`{"attempts":2,"retryOn":{"conditions":["ConnectFailure","RefusedStream"],"statusCodes":[503]},"methods":["GET","HEAD","OPTIONS","PUT","DELETE","TRACE"],"backoff":{"baseInterval":"1500ms","maxInterval":"15s"},"budget":{"percent":20,"interval":"10s","minRetryRate":{"count":10,"interval":"1s"}}}`,
		},
		"retry empty lists kept": {
			route + "retry: {retryOn: {conditions: [], statusCodes: []}, methods: []}",
			`{"attempts":2,"retryOn":{"conditions":[],"statusCodes":[]},"methods":[],"backoff":{"baseInterval":"25ms","maxInterval":"250ms"}}`,
		},
		"outlierDetection": {
			route + "outlierDetection: {}",
			`{"consecutive5xx":5,"consecutiveGatewayErrors":0,"interval":"10s","baseEjectionTime":"30s","maxEjectionTime":"5m","maxEjectionPercent":50}`,
		},
		"outlierDetection with a long base": {
			route + "outlierDetection: {baseEjectionTime: 10m}",
			`{"consecutive5xx":5,"consecutiveGatewayErrors":0,"interval":"10s","baseEjectionTime":"10m","maxEjectionTime":"10m","maxEjectionPercent":50}`,
		},
		"loadBalancer": {route + "loadBalancer: {}", `{"type":"LeastRequest","leastRequest":{"choiceCount":2}}`},
		"loadBalancer RingHash": {
			route + "loadBalancer: {type: RingHash, hash: {sourceIP: {}}}",
			`{"type":"RingHash","hash":{"sourceIP":{}},"ringHash":{"minRingSize":1024,"maxRingSize":8388608}}`,
		},
		"loadBalancer RingHash small max": {
			route + "loadBalancer: {type: RingHash, hash: {sourceIP: {}}, ringHash: {maxRingSize: 512}}",
			`{"type":"RingHash","hash":{"sourceIP":{}},"ringHash":{"minRingSize":512,"maxRingSize":512}}`,
		},
		"loadBalancer Maglev": {
			route + "loadBalancer: {type: Maglev, hash: {header: {name: x}}}",
			`{"type":"Maglev","hash":{"header":{"name":"x"}},"maglev":{"tableSize":65537}}`,
		},
		"loadBalancer RoundRobin": {route + "loadBalancer: {type: RoundRobin}", `{"type":"RoundRobin"}`},
		"faultInjection": {
			route + "faultInjection: {match: {headers: [{name: x-chaos, value: 'on'}]}, delay: {fixedDelay: 1s}, abort: {httpStatus: 503, fraction: {numerator: 5}}}",
			`{"match":{"headers":[{"name":"x-chaos","type":"Exact","value":"on"}]},"delay":{"fixedDelay":"1s","percent":100},"abort":{"httpStatus":503,"fraction":{"numerator":5,"denominator":100}}}`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			tp := decode(t, tc.spec)
			s := tp.Spec
			var block any
			for _, b := range []any{s.RateLimit, s.Retry, s.Timeouts, s.CircuitBreaker, s.OutlierDetection, s.LoadBalancer, s.FaultInjection} {
				if !reflect.ValueOf(b).IsNil() {
					block = b
				}
			}
			if got := js(block); got != tc.want {
				t.Errorf("defaulted to\n%s\nwant\n%s", got, tc.want)
			}
			if errs := ValidateTrafficPolicy(tp); len(errs) > 0 {
				t.Errorf("defaults do not validate: %v", errs)
			}
			checkStoredUnchanged(t, tp, SetDefaultsTrafficPolicy)
		})
	}
}

// checkStoredUnchanged stores a defaulted policy as JSON and reads it back with the defaults
// applied again (what every decode does): nothing may change.
func checkStoredUnchanged[P interface {
	*T
	runtime.Object
}, T any](t *testing.T, p P, setDefaults func(P)) {
	t.Helper()
	again := P(new(T))
	if err := json.Unmarshal([]byte(js(p)), again); err != nil {
		t.Fatal(err)
	}
	setDefaults(again)
	if !reflect.DeepEqual(again, p) {
		t.Errorf("round trip changed the policy:\n%s\n%s", js(again), js(p))
	}
}

func TestDurations(t *testing.T) {
	for in, want := range map[gwapiv1.Duration]time.Duration{"1h30m": 90 * time.Minute, "250ms": 250 * time.Millisecond, "0s": 0, "99999h": 99999 * time.Hour, "1h1m1s1ms": time.Hour + time.Minute + time.Second + time.Millisecond} {
		if got, ok := ParseDuration(in); !ok || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v", in, got, ok)
		}
	}
	for _, in := range []gwapiv1.Duration{"", "1.5s", "-1s", "1us", "100000s", "10", "1h1m1s1ms1h", "1d"} {
		if _, ok := ParseDuration(in); ok {
			t.Errorf("ParseDuration(%q) accepted", in)
		}
	}
	for in, want := range map[time.Duration]gwapiv1.Duration{0: "0s", 25 * time.Millisecond: "25ms", 60 * time.Second: "1m", 300 * time.Second: "5m", 90 * time.Minute: "1h30m", 1500 * time.Millisecond: "1s500ms"} {
		if got := FormatDuration(in); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", in, got, want)
		}
		if back, ok := ParseDuration(FormatDuration(in)); !ok || back != in {
			t.Errorf("FormatDuration(%v) does not parse back: %v %v", in, back, ok)
		}
	}
}

func TestTargetsSummary(t *testing.T) {
	tp := decode(t, "targetRefs: [{kind: HTTPRoute, name: shop, sectionName: login}, {kind: Gateway, name: default}]\ntimeouts: {}")
	if got, want := TargetsSummary(tp.Spec.TargetRefs), "HTTPRoute/shop/login,Gateway/default"; got != want {
		t.Errorf("TargetsSummary = %q, want %q", got, want)
	}
}

// FuzzValidateTrafficPolicy: any YAML or JSON that decodes into a TrafficPolicy can be
// defaulted and validated without panicking; defaulting is idempotent and survives a JSON
// round trip (what storage does).
func FuzzValidateTrafficPolicy(f *testing.F) {
	f.Add("spec: {targetRefs: [{kind: HTTPRoute, name: shop, sectionName: login}], rateLimit: {rules: [{name: per-ip, countBy: [{clientIP: {}}], limit: {requests: 5, unit: Minute}, shadow: true}]}}")
	f.Add("spec: {targetRefs: [{kind: Gateway, name: default, sectionName: https}], rateLimit: {failureMode: FailOpen, responseHeaders: IETFDraft, exempt: [{clientCIDRs: [10.0.0.0/8]}], rules: [{name: k, scope: Global, counters: Shared, countBy: [{header: {name: x-api-key}}], missingKey: Shared, limit: {requests: 600, unit: Minute}}]}}")
	f.Add(`{"spec":{"targetRefs":[{"kind":"HTTPRoute","name":"orders"}],"timeouts":{"request":"10s","backendRequest":"2s","connect":"1s"},"retry":{"attempts":3,"retryOn":{"conditions":["ConnectFailure","Reset"],"statusCodes":[502,503]},"backoff":{"baseInterval":"50ms","maxInterval":"500ms"},"budget":{"percent":20}},"circuitBreaker":{"maxConnections":200},"outlierDetection":{"consecutive5xx":5,"interval":"5s"}}}`)
	f.Add("spec: {targetRefs: [{kind: HTTPRoute, name: cart}], loadBalancer: {type: Maglev, hash: {cookie: {name: a, ttl: 1h, path: /, sameSite: Lax, secure: true}}, maglev: {tableSize: 65537}}}")
	f.Add("spec: {targetRefs: [{kind: HTTPRoute, name: c}], faultInjection: {match: {headers: [{name: x-chaos, value: 'on'}]}, delay: {fixedDelay: 1500ms, percent: 20}, abort: {httpStatus: 503, fraction: {numerator: 5, denominator: 1000}}}}")
	f.Add("spec: {targetRefs: [{kind: GRPCRoute, name: g}], faultInjection: {abort: {grpcStatus: 14}}, retry: {disabled: true, attempts: 1}}")
	f.Add("spec: {targetRefs: [{kind: HTTPRoute, name: r}], loadBalancer: {type: RingHash, hash: {}, ringHash: {minRingSize: 2147483647}}, retry: {backoff: {baseInterval: 99999h}}}")
	f.Fuzz(func(t *testing.T, in string) {
		fuzzPolicy(t, in, SetDefaultsTrafficPolicy, ValidateTrafficPolicy, func(tp *TrafficPolicy) { _ = TargetsSummary(tp.Spec.TargetRefs) })
	})
}

// fuzzPolicy is the body of the policy fuzz targets: any YAML or JSON that decodes into a
// policy is validated undefaulted, then defaulted twice (which must change nothing the second
// time) and validated, and a valid policy must come back unchanged through storage (JSON, and
// the defaults again). also runs on the undefaulted policy. Nothing may panic.
func fuzzPolicy[P interface {
	*T
	runtime.Object
}, T any](t *testing.T, in string, setDefaults func(P), validate func(P) field.ErrorList, also func(P)) {
	p := P(new(T))
	if yaml.Unmarshal([]byte(in), p) != nil {
		return
	}
	_ = validate(p.DeepCopyObject().(P)) // undefaulted input must not panic either
	also(p)
	setDefaults(p)
	once := p.DeepCopyObject()
	setDefaults(p)
	if !reflect.DeepEqual(once, runtime.Object(p)) {
		t.Fatalf("defaulting not idempotent")
	}
	errs := validate(p)
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	back := P(new(T))
	if err := json.Unmarshal(b, back); err != nil {
		t.Fatalf("stored form does not decode: %v", err)
	}
	setDefaults(back)
	if len(errs) == 0 && !apiequality.Semantic.DeepEqual(back, p) {
		t.Fatalf("a valid policy changes through storage:\n%s\n%s", b, js(back))
	}
}

// dups lists the paths of items 1..count of a list whose items all equal the first.
func dups(count int, list string) []string {
	var out []string
	for i := 1; i <= count; i++ {
		out = append(out, list+"["+strconv.Itoa(i)+"]")
	}
	return out
}

func dur(s gwapiv1.Duration) *gwapiv1.Duration { return &s }

func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
