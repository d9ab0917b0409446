// Package openapi holds the generated OpenAPI definitions of every served type
// (hack/update-codegen.sh). Types with an OpenAPIModelName method are keyed by that name; the
// upstream Gateway API types are keyed by Go import path, which the API server's definition
// namer maps to the scheme's names (internal/apiserver).
package openapi
