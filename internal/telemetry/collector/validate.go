package collector

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/confmap"
)

// pathErr is a config validation error at a path of mapstructure keys.
type pathErr struct {
	path []string
	err  error
}

var validatorType = reflect.TypeFor[confmap.Validator]()

// validateConfig runs the Validate methods of a decoded config and of everything inside it,
// as the collector does before it starts, and returns each error with the path of YAML keys
// leading to it. Unlike confmap.Validate it names embedded (",squash") structs by nothing, so
// an otlphttp endpoint error is at "endpoint", not "clientconfig.endpoint". A Validate that
// panics (fuzzed input) is an error, not a crash.
func validateConfig(v reflect.Value, path []string, depth int) (errs []pathErr) {
	if depth > 32 || !v.IsValid() {
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		if v.Kind() == reflect.Pointer {
			// The pointer's own Validate (pointer receiver) runs on the struct below.
			return validateConfig(v.Elem(), path, depth+1)
		}
		return validateConfig(v.Elem(), path, depth+1)
	}
	if err := callValidate(v); err != nil {
		errs = append(errs, pathErr{path: path, err: err})
	}
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, squash := fieldKey(f)
			if name == "-" {
				continue
			}
			sub := path
			if !squash {
				sub = append(append([]string(nil), path...), name)
			}
			errs = append(errs, validateConfig(v.Field(i), sub, depth+1)...)
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			sub := append(append([]string(nil), path...), "["+strconv.Itoa(i)+"]")
			errs = append(errs, validateConfig(v.Index(i), sub, depth+1)...)
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			sub := append(append([]string(nil), path...), fmt.Sprint(it.Key().Interface()))
			errs = append(errs, validateConfig(it.Value(), sub, depth+1)...)
		}
	}
	return errs
}

// callValidate calls v's Validate, with a value or a pointer receiver.
func callValidate(v reflect.Value) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("invalid value (%v)", r)
		}
	}()
	if v.Type().Implements(validatorType) {
		if v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return nil
			}
		}
		return v.Interface().(confmap.Validator).Validate()
	}
	if reflect.PointerTo(v.Type()).Implements(validatorType) {
		if !v.CanAddr() {
			p := reflect.New(v.Type())
			p.Elem().Set(v)
			v = p.Elem()
		}
		return v.Addr().Interface().(confmap.Validator).Validate()
	}
	return nil
}

// fieldKey is a struct field's key in the config, and whether it is squashed into its parent.
func fieldKey(f reflect.StructField) (string, bool) {
	tag, ok := f.Tag.Lookup(confmap.MapstructureTag)
	if !ok {
		return strings.ToLower(f.Name), false
	}
	parts := strings.Split(tag, ",")
	for _, o := range parts[1:] {
		if o == "squash" {
			return "", true
		}
	}
	if parts[0] == "" {
		return strings.ToLower(f.Name), false
	}
	return parts[0], false
}
