package console

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	restclient "k8s.io/client-go/rest"
)

// apiClient reaches the API server with one session's key: the console's only way to read or
// change anything.
type apiClient struct {
	base, token string
	ca          []byte
	http        *http.Client
	// projectOf says which project a project key is for (nil: none are).
	projectOf func(key string) (string, bool)

	mu  sync.Mutex
	dyn map[string]dynamic.Interface
}

func newAPIClient(base string, ca []byte, token string, projectOf func(string) (string, bool)) *apiClient {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &apiClient{base: base, token: token, ca: ca, projectOf: projectOf, dyn: map[string]dynamic.Interface{},
		http: &http.Client{Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true,
			MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second,
		}}}
}

// config is a client-go configuration for a project's API ("" the root) with this key.
func (a *apiClient) config(project string) *restclient.Config {
	host := a.base
	if project != "" {
		host += "/projects/" + project
	}
	return &restclient.Config{Host: host, BearerToken: a.token, TLSClientConfig: restclient.TLSClientConfig{CAData: a.ca},
		QPS: 200, Burst: 400, Timeout: 30 * time.Second, UserAgent: "apoxy-console"}
}

// dynamic is a dynamic client of project's API, kept for the session.
func (a *apiClient) dynamic(project string) (dynamic.Interface, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if dc := a.dyn[project]; dc != nil {
		return dc, nil
	}
	dc, err := dynamic.NewForConfig(a.config(project))
	if err != nil {
		return nil, err
	}
	a.dyn[project] = dc
	return dc, nil
}

// do sends a request to path (below the server root) with the key; a non-2xx answer is an
// error carrying the API's message.
func (a *apiClient) do(ctx context.Context, method, path string, q url.Values, accept string) (*http.Response, error) {
	u := a.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var st metav1.Status
		if json.Unmarshal(body, &st) == nil && st.Message != "" {
			return nil, &apierrors.StatusError{ErrStatus: st}
		}
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, body)
	}
	return resp, nil
}

// getJSON reads path into v.
func (a *apiClient) getJSON(ctx context.Context, path string, q url.Values, accept string, v any) error {
	resp, err := a.do(ctx, http.MethodGet, path, q, accept)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// whoAmI says what the key reaches: every project (the admin key) or one.
func (a *apiClient) whoAmI(ctx context.Context) (admin bool, project string, err error) {
	if a.token == "" {
		return false, "", errors.New("enter a key: the admin key, or a project's key (`apoxy project key NAME`)")
	}
	resp, err := a.do(ctx, http.MethodGet, "/apis/platform.apoxy.dev/v1alpha1/projects", url.Values{"limit": {"1"}}, "application/json")
	if err == nil {
		resp.Body.Close()
		return true, "", nil
	}
	if a.projectOf != nil {
		if p, ok := a.projectOf(a.token); ok {
			resp, err := a.do(ctx, http.MethodGet, "/projects/"+p+"/apis", nil, "application/json")
			if err == nil {
				resp.Body.Close()
				return false, p, nil
			}
		}
	}
	return false, "", errors.New("the API server does not accept this key: use the admin key or a project's key (`apoxy project key NAME`)")
}

// projects lists the projects the session may see.
func (a *apiClient) projects(ctx context.Context, s *session) ([]string, error) {
	if !s.admin {
		return []string{s.project}, nil
	}
	var list struct {
		Items []struct {
			Metadata metav1.ObjectMeta `json:"metadata"`
		} `json:"items"`
	}
	if err := a.getJSON(ctx, "/apis/platform.apoxy.dev/v1alpha1/projects", nil, "application/json", &list); err != nil {
		return nil, err
	}
	var out []string
	for _, p := range list.Items {
		out = append(out, p.Metadata.Name)
	}
	return out, nil
}

// table reads a kind's objects as the API prints them (the printer columns `apoxy get` shows),
// each row with its whole object.
func (a *apiClient) table(ctx context.Context, project, path string) (*metav1.Table, error) {
	var t metav1.Table
	err := a.getJSON(ctx, "/projects/"+project+path, url.Values{"includeObject": {"Object"}}, "application/json;as=Table;v=v1;g=meta.k8s.io", &t)
	return &t, err
}
