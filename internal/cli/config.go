package cli

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"apoxy.dev/apoxy/internal/pki"
)

// Config is the CLI configuration (~/.apoxy/config.yaml): which server, which project, and the
// keys to reach them. `apoxy dev` and `apoxy server` write one into their data directory.
type Config struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Server is the API server's base URL.
	Server string `json:"server"`
	// CertificateAuthorityData is the PEM CA the server's certificate chains to.
	CertificateAuthorityData string `json:"certificateAuthorityData,omitempty"`
	// AdminToken manages projects; it is absent for users who hold only project keys.
	AdminToken string `json:"adminToken,omitempty"`
	// CurrentProject is the project commands act on unless --project says otherwise.
	CurrentProject string `json:"currentProject"`
	// Projects are the known projects and their keys.
	Projects []ProjectConfig `json:"projects,omitempty"`

	path string
}

// ProjectConfig is one project's entry.
type ProjectConfig struct {
	Name  string `json:"name"`
	Token string `json:"token,omitempty"`
}

const (
	configAPIVersion = "config.apoxy.dev/v1alpha1"
	configKind       = "Config"
)

// DefaultConfigPath is ~/.apoxy/config.yaml.
func DefaultConfigPath() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ".apoxy/config.yaml"
	}
	return filepath.Join(home, ".apoxy", "config.yaml")
}

// LoadConfig reads a CLI config. A missing file is an error that says how to get one.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no CLI config at %s: start a server with `apoxy dev` (it writes DIR/config.yaml) and pass --config DIR/config.yaml, or copy that file to %s", path, DefaultConfigPath())
	}
	if err != nil {
		return nil, err
	}
	var c Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if c.Server == "" {
		return nil, fmt.Errorf("%s: server is not set", path)
	}
	c.path = path
	return &c, nil
}

// Save writes the config atomically with owner-only permissions (it holds keys).
func (c *Config) Save(path string) error {
	if path == "" {
		path = c.path
	}
	c.APIVersion, c.Kind = configAPIVersion, configKind
	data, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	c.path = path
	return pki.WriteFileAtomic(path, data, 0o600)
}

// Project returns a project's entry, or nil.
func (c *Config) Project(name string) *ProjectConfig {
	for i := range c.Projects {
		if c.Projects[i].Name == name {
			return &c.Projects[i]
		}
	}
	return nil
}

// SetProject adds or updates a project's key.
func (c *Config) SetProject(name, token string) {
	if p := c.Project(name); p != nil {
		p.Token = token
		return
	}
	c.Projects = append(c.Projects, ProjectConfig{Name: name, Token: token})
	slices.SortFunc(c.Projects, func(a, b ProjectConfig) int { return strings.Compare(a.Name, b.Name) })
}

// RemoveProject forgets a project.
func (c *Config) RemoveProject(name string) {
	c.Projects = slices.DeleteFunc(c.Projects, func(p ProjectConfig) bool { return p.Name == name })
}

// tokenFor returns the key to use for a project: its own, else the admin key.
func (c *Config) tokenFor(project string) (string, error) {
	if p := c.Project(project); p != nil && p.Token != "" {
		return p.Token, nil
	}
	if c.AdminToken != "" {
		return c.AdminToken, nil
	}
	return "", fmt.Errorf("no key for project %q in %s: ask an admin for one, or run `apoxy project use %s` with an admin config", project, c.path, project)
}

func (c *Config) caData() ([]byte, error) {
	if c.CertificateAuthorityData == "" {
		return nil, nil
	}
	if strings.HasPrefix(strings.TrimSpace(c.CertificateAuthorityData), "-----BEGIN") {
		return []byte(c.CertificateAuthorityData), nil
	}
	return base64.StdEncoding.DecodeString(c.CertificateAuthorityData)
}

// Kubeconfig renders a kubeconfig with one context per project (current = the config's current
// project), each pointing at https://SERVER/projects/NAME with the project's key.
func (c *Config) Kubeconfig() (*clientcmdapi.Config, error) {
	ca, err := c.caData()
	if err != nil {
		return nil, fmt.Errorf("certificateAuthorityData: %w", err)
	}
	kc := clientcmdapi.NewConfig()
	for _, p := range c.Projects {
		name := "apoxy-" + p.Name
		kc.Clusters[name] = &clientcmdapi.Cluster{Server: c.Server + "/projects/" + p.Name, CertificateAuthorityData: ca}
		token, err := c.tokenFor(p.Name)
		if err != nil {
			return nil, err
		}
		kc.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: token}
		kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name, Namespace: "default"}
	}
	kc.CurrentContext = "apoxy-" + c.CurrentProject
	return kc, nil
}

// WriteKubeconfig writes the kubeconfig for this config to path (owner-only).
func (c *Config) WriteKubeconfig(path string) error {
	kc, err := c.Kubeconfig()
	if err != nil {
		return err
	}
	data, err := clientcmd.Write(*kc)
	if err != nil {
		return err
	}
	return pki.WriteFileAtomic(path, data, 0o600)
}
