package cli

import (
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"apoxy.dev/apoxy/internal/version"
)

// clientGetter gives kubectl's command machinery the current project's API: the URL
// SERVER/projects/NAME, the project's key and the server CA. The config is read on first use,
// so commands that need no server (version -c, completion) never touch it.
type clientGetter struct {
	g *globalFlags

	once   sync.Once
	cfg    *Config
	err    error
	disc   discovery.CachedDiscoveryInterface
	mapper meta.RESTMapper
}

var _ genericclioptions.RESTClientGetter = (*clientGetter)(nil)

func (c *clientGetter) load() (*Config, error) {
	c.once.Do(func() { c.cfg, c.err = LoadConfig(c.g.configPath()) })
	return c.cfg, c.err
}

func (c *clientGetter) project() (string, error) {
	cfg, err := c.load()
	if err != nil {
		return "", err
	}
	if c.g.project != "" {
		return c.g.project, nil
	}
	if cfg.CurrentProject == "" {
		return "", fmt.Errorf("no current project: run `apoxy project use NAME` or pass --project")
	}
	return cfg.CurrentProject, nil
}

// restConfig returns a client config for path ("" for the server root, admin only).
func (c *clientGetter) restConfig(path, token string) (*rest.Config, error) {
	cfg, err := c.load()
	if err != nil {
		return nil, err
	}
	ca, err := cfg.caData()
	if err != nil {
		return nil, fmt.Errorf("%s: certificateAuthorityData: %w", cfg.path, err)
	}
	return &rest.Config{
		Host:            cfg.Server + path,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca},
		UserAgent:       "apoxy/" + version.String(),
		QPS:             100,
		Burst:           200,
	}, nil
}

func (c *clientGetter) ToRESTConfig() (*rest.Config, error) {
	project, err := c.project()
	if err != nil {
		return nil, err
	}
	token, err := c.cfg.tokenFor(project)
	if err != nil {
		return nil, err
	}
	return c.restConfig("/projects/"+project, token)
}

// adminRESTConfig reaches the server root, where projects are managed.
func (c *clientGetter) adminRESTConfig() (*rest.Config, error) {
	cfg, err := c.load()
	if err != nil {
		return nil, err
	}
	if cfg.AdminToken == "" {
		return nil, fmt.Errorf("%s has no adminToken: managing projects needs the admin key (in the server's DATA_DIR/config.yaml)", cfg.path)
	}
	return c.restConfig("", cfg.AdminToken)
}

func (c *clientGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	if c.disc != nil {
		return c.disc, nil
	}
	rc, err := c.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return nil, err
	}
	c.disc = memory.NewMemCacheClient(dc)
	return c.disc, nil
}

func (c *clientGetter) ToRESTMapper() (meta.RESTMapper, error) {
	if c.mapper != nil {
		return c.mapper, nil
	}
	dc, err := c.ToDiscoveryClient()
	if err != nil {
		return nil, err
	}
	c.mapper = restmapper.NewShortcutExpander(restmapper.NewDeferredDiscoveryRESTMapper(dc), dc, nil)
	return c.mapper, nil
}

// ToRawKubeConfigLoader describes the current project as a one-context kubeconfig; kubectl's
// commands read the namespace from it.
func (c *clientGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	kc := clientcmdapi.NewConfig()
	ns := c.g.namespace
	if ns == "" {
		ns = "default"
	}
	if project, err := c.project(); err == nil {
		if rc, err := c.ToRESTConfig(); err == nil {
			kc.Clusters["apoxy"] = &clientcmdapi.Cluster{Server: rc.Host, CertificateAuthorityData: rc.CAData}
			kc.AuthInfos["apoxy"] = &clientcmdapi.AuthInfo{Token: rc.BearerToken}
			kc.Contexts["apoxy-"+project] = &clientcmdapi.Context{Cluster: "apoxy", AuthInfo: "apoxy", Namespace: ns}
			kc.CurrentContext = "apoxy-" + project
		}
	}
	overrides := &clientcmd.ConfigOverrides{}
	if c.g.namespace != "" {
		overrides.Context.Namespace = c.g.namespace
	}
	return clientcmd.NewDefaultClientConfig(*kc, overrides)
}

// dynamicClient is a dynamic client for the current project.
func (g *clientGetter) dynamicClient() (*dynamic.DynamicClient, error) {
	rc, err := g.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	return dynamic.NewForConfig(rc)
}
