package v1alpha2

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// DirectResponse is a fixed response the gateway sends itself, referenced from an HTTPRoute rule
// with an ExtensionRef filter (group extensions.apoxy.dev, kind DirectResponse).
type DirectResponse struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DirectResponseSpec `json:"spec,omitempty"`
	Status ExtensionStatus    `json:"status,omitempty"`
}

// DirectResponseSpec is the response to send.
type DirectResponseSpec struct {
	// StatusCode defaults to 200; 100-599.
	// +optional
	StatusCode int32 `json:"statusCode,omitempty"`
	// ContentType defaults to text/plain.
	// +optional
	ContentType string `json:"contentType,omitempty"`
	// Headers are added to the response.
	// +optional
	// +listType=atomic
	Headers []HTTPHeader `json:"headers,omitempty"`
	// Body of the response.
	// +optional
	Body *DirectResponseBody `json:"body,omitempty"`
}

// HTTPHeader is one response header.
type HTTPHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// DirectResponseBodyType says where a body comes from. Only Inline exists today.
type DirectResponseBodyType string

// DirectResponseBodyInline means the body is given in the inline field.
const DirectResponseBodyInline DirectResponseBodyType = "Inline"

// DirectResponseBody is the response body.
type DirectResponseBody struct {
	// Type defaults to Inline.
	// +optional
	Type DirectResponseBodyType `json:"type,omitempty"`
	// Inline is the body text (at most 64 KiB).
	// +optional
	Inline *string `json:"inline,omitempty"`
}

// ExtensionStatus is the observed state of an extension object.
type ExtensionStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// DirectResponseList is a list of DirectResponses.
type DirectResponseList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DirectResponse `json:"items"`
}

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// HTTPRouteFilter tunes per-route behaviour that Gateway API has no filter for; today response
// compression. Compression is on by default on every route (gzip, brotli, zstd, above 128
// bytes); a rule that references an HTTPRouteFilter uses its settings instead.
type HTTPRouteFilter struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   HTTPRouteFilterSpec `json:"spec,omitempty"`
	Status ExtensionStatus     `json:"status,omitempty"`
}

// HTTPRouteFilterSpec holds the filter settings.
type HTTPRouteFilterSpec struct {
	// Compressor configures response compression.
	// +optional
	Compressor *Compressor `json:"compressor,omitempty"`
}

// CompressionAlgorithm is gzip, brotli or zstd.
type CompressionAlgorithm string

// Supported compression algorithms.
const (
	CompressionGzip   CompressionAlgorithm = "gzip"
	CompressionBrotli CompressionAlgorithm = "brotli"
	CompressionZstd   CompressionAlgorithm = "zstd"
)

// Compressor configures response compression. When disabled is true no other field may be set.
type Compressor struct {
	// +optional
	Disabled *bool `json:"disabled,omitempty"`
	// Algorithms offered, chosen by the client's Accept-Encoding; empty means all three.
	// +optional
	// +listType=set
	Algorithms []CompressionAlgorithm `json:"algorithms,omitempty"`
	// MinContentLength is the smallest body compressed; defaults to 128, at least 50.
	// +optional
	MinContentLength *uint32 `json:"minContentLength,omitempty"`
	// ContentType replaces the default list of compressible MIME types.
	// +optional
	// +listType=atomic
	ContentType []string `json:"contentType,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// HTTPRouteFilterList is a list of HTTPRouteFilters.
type HTTPRouteFilterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []HTTPRouteFilter `json:"items"`
}
