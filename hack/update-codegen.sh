#!/usr/bin/env bash
# Regenerates deepcopy functions, OpenAPI model names and OpenAPI definitions.
# TestGeneratedCodeIsFresh (hack/codegen_test.go) fails when the checked-in output is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.}
header=hack/boilerplate.go.txt
pkgs=(./api/core/v1alpha ./api/core/v1alpha2 ./api/core/v1alpha3 ./api/extensions/v1alpha2 ./api/platform/v1alpha1 ./api/policy/v1alpha1)

go tool deepcopy-gen --go-header-file "$header" --output-file zz_generated.deepcopy.go "${pkgs[@]}"

# Our packages carry +k8s:openapi-model-package, so their model names match what the scheme
# derives; upstream Gateway API types are re-keyed at runtime (api/openapi/openapi.go).
go tool openapi-gen --go-header-file "$header" \
  --output-dir "$out/api/openapi" --output-pkg apoxy.dev/apoxy/api/openapi \
  --output-file zz_generated.openapi.go \
  --output-model-name-file zz_generated.model_name.go \
  --readonly-pkg k8s.io/apimachinery/pkg/apis/meta/v1 --readonly-pkg k8s.io/apimachinery/pkg/runtime \
  --readonly-pkg k8s.io/apimachinery/pkg/version --readonly-pkg k8s.io/api/core/v1 \
  --readonly-pkg k8s.io/apimachinery/pkg/api/resource --readonly-pkg k8s.io/apimachinery/pkg/util/intstr \
  --readonly-pkg sigs.k8s.io/gateway-api/apis/v1 \
  --report-filename /dev/null \
  k8s.io/apimachinery/pkg/apis/meta/v1 k8s.io/apimachinery/pkg/runtime k8s.io/apimachinery/pkg/version \
  k8s.io/apimachinery/pkg/api/resource k8s.io/apimachinery/pkg/util/intstr \
  k8s.io/api/core/v1 sigs.k8s.io/gateway-api/apis/v1 \
  "${pkgs[@]}"

# Gateway API CRD schemas (experimental channel: the Go types carry every field) from the very
# module version whose Go types we serve, so schema and types cannot drift.
gwdir=$(go list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api)
rm -f "$out"/internal/gwschema/crds/*.yaml
mkdir -p "$out/internal/gwschema/crds"
for f in "$gwdir"/config/crd/experimental/gateway.networking.k8s.io_*.yaml; do
  case "$f" in *vap_*) continue ;; esac
  install -m 0644 "$f" "$out/internal/gwschema/crds/"
done
