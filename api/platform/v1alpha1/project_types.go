package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +genclient:nonNamespaced
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Project is an isolated tenant: its own API endpoint at /projects/<name>, its own storage
// prefix, credentials and data plane. Nothing crosses projects. Deleting a Project deletes every
// object in it.
type Project struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ProjectSpec   `json:"spec,omitempty"`
	Status ProjectStatus `json:"status,omitempty"`
}

// ProjectSpec is the desired state of a Project.
type ProjectSpec struct {
	// DisplayName is a human-friendly name.
	// +optional
	DisplayName string `json:"displayName,omitempty"`
	// KeyRevision rotates the project's API key: bump it and every older key stops working.
	// +optional
	KeyRevision int32 `json:"keyRevision,omitempty"`
	// Hostnames the server admin assigns to this project: exact names ("shop.example.com") or
	// wildcards ("*.example.com"). On listeners projects share, only this project may serve
	// them (and names under a wildcard), whoever claimed them first; other projects' routes for
	// them are refused with reason HostnameAssigned.
	// +optional
	// +listType=set
	Hostnames []string `json:"hostnames,omitempty"`
	// BackendNetworks are internal address ranges (CIDR notation: loopback, private, unique
	// local...) this project's Backends may reach, beyond those the server allows every project
	// (apoxy server --backend-networks; apoxy dev allows them all). Link-local and metadata
	// addresses and the server's own sockets are never reachable.
	// +optional
	// +listType=set
	BackendNetworks []string `json:"backendNetworks,omitempty"`
}

// ProjectStatus is the observed state of a Project.
type ProjectStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready is True once the project's API is served.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// APIPath is where the project's API is served, relative to the server URL.
	// +optional
	APIPath string `json:"apiPath,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ProjectList is a list of Projects.
type ProjectList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Project `json:"items"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ProjectCredentials is returned by GET projects/<name>/credentials: the project's current API
// key, for building a kubeconfig or CLI config. Only the admin can read it.
type ProjectCredentials struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Token is the bearer token that grants access to this project only.
	Token string `json:"token"`
	// APIPath is the project's API path relative to the server URL.
	APIPath string `json:"apiPath"`
}
