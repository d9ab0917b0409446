package ir

// Backend is an upstream cluster. Routes address it by Name plus a port.
type Backend struct {
	// Name is "namespace/name".
	Name      string     `json:"name"`
	Origin    Origin     `json:"origin"`
	Endpoints []Endpoint `json:"endpoints,omitempty"`
	// Protocol: plain, tls, h2 or h2c.
	Protocol string `json:"protocol"`
	// TLS configures verification for tls and h2 (from BackendTLSPolicy or defaults).
	TLS          *UpstreamTLS `json:"tls,omitempty"`
	HealthCheck  *HealthCheck `json:"healthCheck,omitempty"`
	DynamicProxy bool         `json:"dynamicProxy,omitempty"`
	// LoadBalancer, CircuitBreaker and Outlier come from the effective TrafficPolicy of the
	// routes that reach this cluster (nil: platform defaults).
	LoadBalancer   *LoadBalancer     `json:"loadBalancer,omitempty"`
	CircuitBreaker *CircuitBreaker   `json:"circuitBreaker,omitempty"`
	Outlier        *OutlierDetection `json:"outlier,omitempty"`
	// ConnectTimeout bounds opening a connection to an endpoint, TLS handshake included
	// (zero: the Dialer's default, 10 s); ConnectionIdle closes pooled connections idle this
	// long (zero: the data plane's default, 60 s). Both come from a TrafficPolicy's timeouts.
	ConnectTimeout Duration `json:"connectTimeout,omitempty"`
	ConnectionIdle Duration `json:"connectionIdle,omitempty"`
}

// Endpoint is an FQDN (re-resolved by DNS) or a static IP.
type Endpoint struct {
	FQDN string `json:"fqdn,omitempty"`
	IP   string `json:"ip,omitempty"`
}

// UpstreamTLS verifies the upstream's certificate.
type UpstreamTLS struct {
	// ServerName is the SNI and the name verified; empty means the endpoint's host.
	ServerName string `json:"serverName,omitempty"`
	// CAPEM replaces the system roots when set.
	CAPEM []byte `json:"caPEM,omitempty"`
	// SubjectAltNames, when set, are the names the certificate is verified against (any one
	// matching is enough); ServerName is then only the SNI.
	SubjectAltNames []SubjectAltName `json:"subjectAltNames,omitempty"`
	// ClientCertificate is presented to the upstream when it asks for one (the Gateway's
	// spec.tls.backend.clientCertificateRef).
	ClientCertificate *Certificate `json:"clientCertificate,omitempty"`
}

// SubjectAltName is one name an upstream certificate may carry: a DNS name (wildcards in the
// certificate match as usual) or an exact URI such as a SPIFFE ID.
type SubjectAltName struct {
	Hostname string `json:"hostname,omitempty"`
	URI      string `json:"uri,omitempty"`
}

// HealthCheck probes endpoints actively.
type HealthCheck struct {
	HTTP               *HTTPProbe `json:"http,omitempty"`
	Interval           Duration   `json:"interval"`
	Timeout            Duration   `json:"timeout"`
	HealthyThreshold   int        `json:"healthyThreshold"`
	UnhealthyThreshold int        `json:"unhealthyThreshold"`
}

// HTTPProbe is an HTTP health check; nil HTTP means a TCP connect check.
type HTTPProbe struct {
	Path             string `json:"path"`
	Method           string `json:"method"`
	Host             string `json:"host,omitempty"`
	ExpectedStatuses []int  `json:"expectedStatuses,omitempty"`
}
