package v1alpha

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +genclient:nonNamespaced
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// TunnelNode is a site connected to the gateway without open ports: `apoxy tunnel run NAME`
// dials the gateway's tunnel endpoint over QUIC (HTTP/3 CONNECT-IP) with the node's token, and
// each of its agents gets an IPv6 ULA prefix the gateway routes into. Services behind the
// agent are reached from routes through a Backend whose fqdn is in the tunnel domain
// (<service>.<node>.tun.<suffix>).
type TunnelNode struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   TunnelNodeSpec   `json:"spec,omitempty"`
	Status TunnelNodeStatus `json:"status,omitempty"`
}

// TunnelNodeSpec is what the node may do.
type TunnelNodeSpec struct {
	// EgressGateway lets the agents' outbound traffic leave through the gateway, with the
	// gateway's address as its source (off by default: agents reach only the overlay).
	// +optional
	EgressGateway *EgressGatewaySpec `json:"egressGateway,omitempty"`
}

// EgressGatewaySpec turns the node's egress through the gateway on.
type EgressGatewaySpec struct {
	// Enabled lets agent traffic to addresses outside the overlay leave through the gateway.
	// +optional
	Enabled bool `json:"enabled,omitempty"`
}

// TunnelNodeStatus is how agents connect and who is connected.
type TunnelNodeStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Addresses are where agents dial the tunnel endpoint (host:port, UDP).
	// +optional
	// +listType=atomic
	Addresses []string `json:"addresses,omitempty"`
	// Credentials are what an agent presents.
	// +optional
	Credentials *TunnelNodeCredentials `json:"credentials,omitempty"`
	// Prefix is the node's ULA range; each agent gets a /96 inside it.
	// +optional
	Prefix string `json:"prefix,omitempty"`
	// Agents are the connected agents.
	// +optional
	// +listType=map
	// +listMapKey=name
	Agents []AgentStatus `json:"agents,omitempty"`
	// Conditions: Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// TunnelNodeCredentials hold the node's bearer token.
type TunnelNodeCredentials struct {
	// Token is a JWT the server signs (subject: the node's UID); `apoxy tunnel token rotate
	// NAME` replaces it, and the old one is refused from then on.
	Token string `json:"token,omitempty"`
}

// AgentStatus is one connected agent.
type AgentStatus struct {
	// Name is the agent's name (the machine's, or --name); an agent reconnecting under the
	// same name gets the same prefix back.
	Name        string      `json:"name"`
	ConnectedAt metav1.Time `json:"connectedAt"`
	// PrivateAddress is the agent's overlay address (the first of its /96).
	// +optional
	PrivateAddress string `json:"privateAddress,omitempty"`
	// AgentAddress is the agent's /96, which also maps IPv4 services behind it (4in6).
	// +optional
	AgentAddress string `json:"agentAddress,omitempty"`
	// AgentAddresses are the addresses the agent connected from.
	// +optional
	// +listType=atomic
	AgentAddresses []string `json:"agentAddresses,omitempty"`
	// Labels are the agent's --label values.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// TunnelNodeList is a list of TunnelNodes.
type TunnelNodeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TunnelNode `json:"items"`
}
