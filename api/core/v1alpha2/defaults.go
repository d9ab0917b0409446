package v1alpha2

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Defaults users can rely on. They are applied on the server, so `get -o yaml` shows them.
const (
	DefaultHealthInterval     = 10 * time.Second
	DefaultHealthTimeout      = 2 * time.Second
	DefaultHealthyThreshold   = 2
	DefaultUnhealthyThreshold = 3
	DefaultDrainTimeout       = 30 * time.Second
	// DefaultRedisPasswordKey is the Secret key a Redis password is read from.
	DefaultRedisPasswordKey = "password"
	// DefaultContentLogMaxBodyBytes is how much of a body content logs capture.
	DefaultContentLogMaxBodyBytes = 4096
	// MaxContentLogBodyBytes bounds contentLogs.maxBodyBytes.
	MaxContentLogBodyBytes = 1 << 20
	// DefaultTracingServiceName is the service.name of the gateway's spans.
	DefaultTracingServiceName = "apoxy-gateway"
	// DefaultDatadogSite is the Datadog site integrations send to.
	DefaultDatadogSite = "datadoghq.com"
	// DefaultSecretValueKey is the Secret key a credential is read from.
	DefaultSecretValueKey = "value"
)

func addDefaultingFuncs(s *runtime.Scheme) error {
	s.AddTypeDefaultingFunc(&Backend{}, func(o any) { SetDefaultsBackend(o.(*Backend)) })
	s.AddTypeDefaultingFunc(&Proxy{}, func(o any) { SetDefaultsProxy(o.(*Proxy)) })
	s.AddTypeDefaultingFunc(&CloudMonitoringIntegration{}, func(o any) { SetDefaultsCloudMonitoringIntegration(o.(*CloudMonitoringIntegration)) })
	return nil
}

// SetDefaultsBackend fills health-check and DNS-cache defaults.
func SetDefaultsBackend(b *Backend) {
	if hc := b.Spec.HealthCheck; hc != nil {
		setDuration(&hc.Interval, DefaultHealthInterval)
		setDuration(&hc.Timeout, DefaultHealthTimeout)
		setInt32(&hc.HealthyThreshold, DefaultHealthyThreshold)
		setInt32(&hc.UnhealthyThreshold, DefaultUnhealthyThreshold)
		if h := hc.HTTP; h != nil {
			if h.Path == "" {
				h.Path = "/"
			}
			if h.Method == "" {
				h.Method = "GET"
			}
		}
	}
	if dp := b.Spec.DynamicProxy; dp != nil {
		if dp.DNSCacheConfig == nil {
			dp.DNSCacheConfig = &DNSCacheConfig{}
		}
		c := dp.DNSCacheConfig
		if c.DNSLookupFamily == "" {
			c.DNSLookupFamily = DNSLookupFamilyAuto
		}
		setDuration(&c.DNSRefreshRate, 60*time.Second)
		setDuration(&c.DNSMinRefreshRate, 5*time.Second)
		setDuration(&c.HostTTL, 5*time.Minute)
		setInt32(&c.MaxHosts, 1024)
		setDuration(&c.DNSQueryTimeout, 5*time.Second)
	}
}

// SetDefaultsProxy sets the provider, drain and Redis password-key defaults.
func SetDefaultsProxy(p *Proxy) {
	if p.Spec.Provider == "" {
		p.Spec.Provider = ProxyProviderCloud
	}
	if p.Spec.Shutdown == nil {
		p.Spec.Shutdown = &ShutdownConfig{}
	}
	setDuration(&p.Spec.Shutdown.DrainTimeout, DefaultDrainTimeout)
	if rl := p.Spec.RateLimit; rl != nil && rl.Redis != nil && rl.Redis.PasswordSecretRef != nil && rl.Redis.PasswordSecretRef.Key == "" {
		rl.Redis.PasswordSecretRef.Key = DefaultRedisPasswordKey
	}
	if t := p.Spec.Telemetry; t != nil {
		if c := t.ContentLogs; c != nil {
			setInt32(&c.MaxBodyBytes, DefaultContentLogMaxBodyBytes)
		}
		if tr := t.Tracing; tr != nil {
			setInt32(&tr.SamplingRate, 100)
			if tr.ParentBased == nil {
				yes := true
				tr.ParentBased = &yes
			}
			if len(tr.Propagation) == 0 {
				tr.Propagation = []string{PropagationTraceContext, PropagationB3}
			}
			if tr.ServiceName == "" {
				tr.ServiceName = DefaultTracingServiceName
			}
		}
		if ref := t.OtelCollectorConfig; ref != nil && ref.Kind == "" {
			ref.Kind = "ConfigMap"
		}
	}
}

// SetDefaultsCloudMonitoringIntegration enables the integration and fills the Datadog site,
// the Axiom region, the OTLP protocol and Secret keys.
func SetDefaultsCloudMonitoringIntegration(c *CloudMonitoringIntegration) {
	s := &c.Spec
	if s.Enabled == nil {
		yes := true
		s.Enabled = &yes
	}
	if d := s.DatadogCredentials; d != nil {
		if d.Site == "" {
			d.Site = DefaultDatadogSite
		}
		defaultSecretKey(&d.APIKey)
	}
	if g := s.GrafanaCredentials; g != nil {
		defaultSecretKey(&g.APIKey)
	}
	if a := s.AxiomCredentials; a != nil {
		if a.Region == "" {
			a.Region = AxiomRegionUS
		}
		defaultSecretKey(&a.APIToken)
	}
	if o := s.OTLP; o != nil {
		if o.Protocol == "" {
			o.Protocol = OTLPProtocolHTTP
		}
		for k, v := range o.Headers {
			defaultSecretKey(&v)
			o.Headers[k] = v
		}
	}
}

func defaultSecretKey(v *SecretValue) {
	if v.SecretKeyRef != nil && v.SecretKeyRef.Key == "" {
		v.SecretKeyRef.Key = DefaultSecretValueKey
	}
}

func setDuration(p **metav1.Duration, d time.Duration) {
	if *p == nil {
		*p = &metav1.Duration{Duration: d}
	}
}

func setInt32(p **int32, v int32) {
	if *p == nil {
		*p = &v
	}
}
