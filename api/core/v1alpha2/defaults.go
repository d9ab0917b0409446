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
)

func addDefaultingFuncs(s *runtime.Scheme) error {
	s.AddTypeDefaultingFunc(&Backend{}, func(o any) { SetDefaultsBackend(o.(*Backend)) })
	s.AddTypeDefaultingFunc(&Proxy{}, func(o any) { SetDefaultsProxy(o.(*Proxy)) })
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
