// Package node runs the TunnelNodes of the projects: each project's controller runs a
// Reconciler that gives every node its /64 of the project's overlay and its token and reports
// the connected agents; the process's Registry is what the tunnel endpoint checks tokens
// against.
package node

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	corev1a "apoxy.dev/apoxy/api/core/v1alpha"
	"apoxy.dev/apoxy/internal/controller"
	"apoxy.dev/apoxy/internal/resource"
	"apoxy.dev/apoxy/internal/tunnel"
)

// AnnRotate, on a TunnelNode, replaces its token (`apoxy tunnel token rotate` sets it to the
// time): tokens issued before are refused from then on.
const AnnRotate = "tunnel.apoxy.dev/rotate"

var nodesGVR = corev1a.SchemeGroupVersion.WithResource("tunnelnodes")

// Node is what the endpoint needs to know of a TunnelNode to accept its agents.
type Node struct {
	UID, Rotation string
	Index         uint16
	// Egress is spec.egressGateway.enabled.
	Egress bool
}

// Registry holds every project's nodes for the endpoint's authenticator and the data
// plane's resolver.
type Registry struct {
	signer *tunnel.Signer
	domain string
	// Services, when set, are the services a node's connected agents publish.
	Services func(project, node string) map[string]netip.Addr

	mu    sync.Mutex
	nodes map[string]map[string]Node
}

// NewRegistry makes a registry whose tokens signer checks, naming nodes in domain (the
// tunnel domain, tunnel.DefaultDomain when empty).
func NewRegistry(signer *tunnel.Signer, domain string) *Registry {
	if domain == "" {
		domain = tunnel.DefaultDomain
	}
	return &Registry{signer: signer, domain: strings.ToLower(strings.TrimSuffix(domain, ".")), nodes: map[string]map[string]Node{}}
}

// Domain is the tunnel domain.
func (r *Registry) Domain() string { return r.domain }

// ErrNoSuchName is a tunnel-domain name no node or service of the project has.
var ErrNoSuchName = errors.New("no such TunnelNode or service")

// Resolve answers a name of the tunnel domain for a project: <node> is the node's address
// (any of its agents), <service>.<node> a service behind it (published by an agent, or a
// dashed IPv4 address). ok is false for names outside the domain. The addresses are the
// node-level ones (tunnel.NodeAddr), so they stay right while agents come and go.
func (r *Registry) Resolve(project, host string) (addrs []netip.Addr, ok bool, err error) {
	name, ok, err := tunnel.ParseName(host, r.domain)
	if !ok || err != nil {
		return nil, ok, err
	}
	r.mu.Lock()
	n, found := r.nodes[project][name.Node]
	r.mu.Unlock()
	if !found {
		return nil, true, fmt.Errorf("%s: %w (TunnelNode %q)", host, ErrNoSuchName, name.Node)
	}
	node := tunnel.NodePrefix(project, n.Index)
	if name.Service == "" {
		return []netip.Addr{tunnel.NodeAddr(node)}, true, nil
	}
	if v4, ok := tunnel.DashedIPv4(name.Service); ok {
		return []netip.Addr{tunnel.NodeMap4(node, v4)}, true, nil
	}
	if r.Services != nil {
		if v4, ok := r.Services(project, name.Node)[name.Service]; ok {
			return []netip.Addr{tunnel.NodeMap4(node, v4)}, true, nil
		}
	}
	return nil, true, fmt.Errorf("%s: %w (no connected agent of TunnelNode %q publishes service %q)", host, ErrNoSuchName, name.Node, name.Service)
}

// Signer is the registry's token signer.
func (r *Registry) Signer() *tunnel.Signer { return r.signer }

func (r *Registry) set(project string, nodes map[string]Node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nodes[project] = nodes
}

// Release forgets a project's nodes (the project is gone): its tokens are refused.
func (r *Registry) Release(project string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.nodes, project)
}

// credential names the node's current token generation.
func (n Node) credential() string { return n.UID + "/" + n.Rotation }

// Egress reports whether a project's node has egress through the gateway.
func (r *Registry) Egress(project, node string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nodes[project][node].Egress
}

// Authenticate is the endpoint's tunnel.Authenticator: a bearer token that verifies, for a
// node that exists with that UID, issued for its current rotation.
func (r *Registry) Authenticate(req *http.Request) (tunnel.Identity, error) {
	tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return tunnel.Identity{}, errors.New("no bearer token: pass the TunnelNode's status.credentials.token")
	}
	c, err := r.signer.Verify(tok)
	if err != nil {
		return tunnel.Identity{}, err
	}
	r.mu.Lock()
	n, ok := r.nodes[c.Project][c.Node]
	r.mu.Unlock()
	switch {
	case !ok || n.UID != c.NodeUID:
		return tunnel.Identity{}, fmt.Errorf("TunnelNode %q no longer exists", c.Node)
	case n.Rotation != c.Rotation:
		return tunnel.Identity{}, fmt.Errorf("the token of TunnelNode %q was rotated: use its current status.credentials.token", c.Node)
	}
	return tunnel.Identity{Project: c.Project, Node: c.Node, NodeIndex: n.Index, Credential: n.credential()}, nil
}

// Options configure a project's Reconciler.
type Options struct {
	Project  string
	Registry *Registry
	// Endpoint is the tunnel endpoint (nil: none runs; nodes say so).
	Endpoint *tunnel.Server
	// Addresses return where agents dial the endpoint (status.addresses; known once it
	// listens).
	Addresses func() []string
	Now       func() time.Time
}

// Reconciler gives a project's TunnelNodes their prefix and token and reports their agents.
type Reconciler struct {
	opts Options
}

// NewReconciler makes a project's reconciler.
func NewReconciler(opts Options) *Reconciler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Reconciler{opts: opts}
}

// Reconcile implements controller.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, set *resource.Set, api dynamic.Interface, _ func()) error {
	nodes := slices.Clone(set.TunnelNodes)
	slices.SortFunc(nodes, func(a, b *corev1a.TunnelNode) int {
		return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), cmp.Compare(a.Name, b.Name))
	})
	// Indexes: a node keeps the one its status reports; the others take the lowest free.
	used := map[uint16]string{}
	index := map[string]uint16{}
	for _, n := range nodes {
		if i, ok := r.indexOf(n.Status.Prefix); ok && used[i] == "" {
			used[i], index[n.Name] = n.Name, i
		}
	}
	next := uint16(1)
	for _, n := range nodes {
		if _, ok := index[n.Name]; ok {
			continue
		}
		for used[next] != "" {
			next++
		}
		used[next], index[n.Name] = n.Name, next
	}
	reg := map[string]Node{}
	var agents []tunnel.Agent
	if r.opts.Endpoint != nil {
		agents = r.opts.Endpoint.Agents(r.opts.Project)
	}
	var errs []error
	for _, n := range nodes {
		rot := n.Annotations[AnnRotate]
		reg[n.Name] = Node{UID: string(n.UID), Rotation: rot, Index: index[n.Name],
			Egress: n.Spec.EgressGateway != nil && n.Spec.EgressGateway.Enabled}
		next := corev1a.TunnelNodeStatus{
			ObservedGeneration: n.Generation,
			Addresses:          r.addresses(),
			Prefix:             tunnel.NodePrefix(r.opts.Project, index[n.Name]).String(),
			Credentials:        n.Status.Credentials,
			Conditions:         slices.Clone(n.Status.Conditions),
		}
		if c := next.Credentials; c == nil || !r.current(c.Token, n, rot) {
			tok, err := r.opts.Registry.Signer().Issue(tunnel.TokenClaims{Project: r.opts.Project, Node: n.Name, NodeUID: string(n.UID), Rotation: rot}, r.opts.Now())
			if err != nil {
				errs = append(errs, err)
				continue
			}
			next.Credentials = &corev1a.TunnelNodeCredentials{Token: tok}
		}
		for _, a := range agents {
			if a.Node != n.Name {
				continue
			}
			// An agent's several sessions (--min-conns) are one agent: the earliest
			// connection's time, every address it connected from.
			if i := slices.IndexFunc(next.Agents, func(s corev1a.AgentStatus) bool { return s.Name == a.Name }); i >= 0 {
				next.Agents[i].AgentAddresses = append(next.Agents[i].AgentAddresses, a.RemoteAddr)
				continue
			}
			next.Agents = append(next.Agents, corev1a.AgentStatus{
				Name: a.Name, ConnectedAt: metav1.NewTime(a.ConnectedAt.UTC().Truncate(time.Second)),
				PrivateAddress: tunnel.AgentAddr(a.Prefix).String(), AgentAddress: a.Prefix.String(),
				AgentAddresses: []string{a.RemoteAddr}, Labels: a.Labels,
			})
		}
		c := metav1.Condition{Type: "Ready", ObservedGeneration: n.Generation, LastTransitionTime: metav1.NewTime(r.opts.Now().UTC().Truncate(time.Second))}
		switch {
		case r.opts.Endpoint == nil:
			c.Status, c.Reason, c.Message = metav1.ConditionFalse, "NoEndpoint", "this server runs no tunnel endpoint: start it with --tunnel-addr"
		case len(next.Agents) == 0:
			c.Status, c.Reason, c.Message = metav1.ConditionFalse, "NoAgents", fmt.Sprintf("no agent is connected: run `apoxy tunnel run %s`", n.Name)
		default:
			c.Status, c.Reason, c.Message = metav1.ConditionTrue, "Connected", fmt.Sprintf("%d agent(s) connected", len(next.Agents))
		}
		if old := meta.FindStatusCondition(n.Status.Conditions, "Ready"); old != nil && old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
		}
		meta.SetStatusCondition(&next.Conditions, c)
		if !equality.Semantic.DeepEqual(&n.Status, &next) {
			if err := controller.WriteStatus(ctx, api, nodesGVR, "TunnelNode", &n.ObjectMeta, &next, "apoxy-tunnels"); err != nil {
				errs = append(errs, err)
			}
		}
	}
	r.opts.Registry.set(r.opts.Project, reg)
	if r.opts.Endpoint != nil {
		// A rotated token or a deleted node ends the sessions it opened.
		r.opts.Endpoint.Revoke(r.opts.Project, func(node, cred string) bool {
			n, ok := reg[node]
			return ok && n.credential() == cred
		})
	}
	return errors.Join(errs...)
}

func (r *Reconciler) addresses() []string {
	if r.opts.Addresses == nil {
		return nil
	}
	return r.opts.Addresses()
}

// current reports whether a stored token is this node's, for its current rotation.
func (r *Reconciler) current(tok string, n *corev1a.TunnelNode, rot string) bool {
	c, err := r.opts.Registry.Signer().Verify(tok)
	return err == nil && c.Project == r.opts.Project && c.Node == n.Name && c.NodeUID == string(n.UID) && c.Rotation == rot
}

// indexOf is the node index of a /64 status.prefix of this project's overlay.
func (r *Reconciler) indexOf(prefix string) (uint16, bool) {
	p, err := netip.ParsePrefix(prefix)
	if err != nil || p.Bits() != 64 || !tunnel.ProjectPrefix(r.opts.Project).Contains(p.Addr()) {
		return 0, false
	}
	b := p.Addr().As16()
	i := binary.BigEndian.Uint16(b[6:8])
	return i, i != 0 && tunnel.NodePrefix(r.opts.Project, i) == p
}
