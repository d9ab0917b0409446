package translate

// ConditionTrafficPolicyAffected is the condition type on Gateways, listeners and route
// parents that an accepted TrafficPolicy targets directly (GEP-713 `<Kind>Affected`; see
// policyIndex.setAffected).
const ConditionTrafficPolicyAffected = "policy.apoxy.dev/TrafficPolicyAffected"
