package v1alpha2

import (
	"mime"
	"net/http"
	"slices"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// DefaultMinContentLength is the smallest response body compressed by default.
const DefaultMinContentLength = 128

// maxInlineBody bounds DirectResponse bodies so they stay cheap to store and serve.
const maxInlineBody = 64 << 10

// SetDefaultsDirectResponse sets status code, content type and body type.
func SetDefaultsDirectResponse(d *DirectResponse) {
	if d.Spec.StatusCode == 0 {
		d.Spec.StatusCode = http.StatusOK
	}
	if d.Spec.ContentType == "" {
		d.Spec.ContentType = "text/plain"
	}
	if d.Spec.Body != nil && d.Spec.Body.Type == "" {
		d.Spec.Body.Type = DirectResponseBodyInline
	}
}

// SetDefaultsHTTPRouteFilter sets the compression threshold unless compression is disabled.
func SetDefaultsHTTPRouteFilter(f *HTTPRouteFilter) {
	c := f.Spec.Compressor
	if c == nil || (c.Disabled != nil && *c.Disabled) {
		return
	}
	if c.MinContentLength == nil {
		v := uint32(DefaultMinContentLength)
		c.MinContentLength = &v
	}
}

// ValidateDirectResponse checks a DirectResponse's spec.
func ValidateDirectResponse(d *DirectResponse) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if c := d.Spec.StatusCode; c != 0 && (c < 100 || c > 599) {
		errs = append(errs, field.Invalid(spec.Child("statusCode"), c, "must be an HTTP status code between 100 and 599"))
	}
	if ct := d.Spec.ContentType; ct != "" {
		if _, _, err := mime.ParseMediaType(ct); err != nil {
			errs = append(errs, field.Invalid(spec.Child("contentType"), ct, "must be a media type such as text/plain or application/json"))
		}
	}
	for i, h := range d.Spec.Headers {
		if !validHeaderName(h.Name) {
			errs = append(errs, field.Invalid(spec.Child("headers").Index(i).Child("name"), h.Name, "must be an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)"))
		}
	}
	if b := d.Spec.Body; b != nil {
		p := spec.Child("body")
		if b.Type != "" && b.Type != DirectResponseBodyInline {
			errs = append(errs, field.NotSupported(p.Child("type"), b.Type, []string{string(DirectResponseBodyInline)}))
		}
		if b.Inline == nil {
			errs = append(errs, field.Required(p.Child("inline"), "set the body text, or remove body"))
		} else if len(*b.Inline) > maxInlineBody {
			errs = append(errs, field.TooLong(p.Child("inline"), "", maxInlineBody))
		}
	}
	return errs
}

var algorithms = []string{string(CompressionGzip), string(CompressionBrotli), string(CompressionZstd)}

// ValidateHTTPRouteFilter checks an HTTPRouteFilter's spec.
func ValidateHTTPRouteFilter(f *HTTPRouteFilter) field.ErrorList {
	var errs field.ErrorList
	c := f.Spec.Compressor
	if c == nil {
		return nil
	}
	p := field.NewPath("spec", "compressor")
	if c.Disabled != nil && *c.Disabled {
		if len(c.Algorithms) > 0 || c.MinContentLength != nil || len(c.ContentType) > 0 {
			errs = append(errs, field.Forbidden(p, "when disabled is true, algorithms, minContentLength and contentType must not be set"))
		}
		return errs
	}
	for i, a := range c.Algorithms {
		if !slices.Contains(algorithms, string(a)) {
			errs = append(errs, field.NotSupported(p.Child("algorithms").Index(i), a, algorithms))
		}
	}
	if m := c.MinContentLength; m != nil && *m < 50 {
		errs = append(errs, field.Invalid(p.Child("minContentLength"), *m, "must be at least 50"))
	}
	for i, ct := range c.ContentType {
		if _, _, err := mime.ParseMediaType(ct); err != nil {
			errs = append(errs, field.Invalid(p.Child("contentType").Index(i), ct, "must be a media type such as application/json"))
		}
	}
	return errs
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !ok && !slices.Contains([]byte("!#$%&'*+-.^_`|~"), c) {
			return false
		}
	}
	return true
}
