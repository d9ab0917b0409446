package collector

import (
	"bytes"
	"fmt"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/pipeline"
	"go.opentelemetry.io/collector/service/pipelines"
	"go.yaml.in/yaml/v3"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter"
)

// maxYAMLSize bounds the collector YAML a tenant may store: a real configuration is a few KiB.
const maxYAMLSize = 256 << 10

// maxNodes bounds the values of the YAML once aliases are expanded.
const maxNodes = 20000

// maxDepth bounds the nesting of the YAML (fuzzed input must not exhaust the stack).
const maxDepth = 64

// ConfigError is a refused configuration: one line per problem, each naming the path inside
// the YAML and the offending token, e.g.
//
//	exporters.otlphttp/x.endpoint: "ht!tp://": invalid URL
//	service.pipelines.traces.exporters[1]: "jaeger" is not defined
//
// The API server shows the lines to the user as they are.
type ConfigError struct {
	Problems []string
}

// Error joins the problems with "; ".
func (e *ConfigError) Error() string { return strings.Join(e.Problems, "; ") }

// problems collects what is wrong with a configuration, then becomes a *ConfigError.
type problems struct {
	list []string
}

func (p *problems) add(path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	p.list = append(p.list, msg)
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	l := slices.Clone(p.list)
	sort.Strings(l)
	return &ConfigError{Problems: slices.Compact(l)}
}

// plan is a checked configuration, ready for service.New.
type plan struct {
	receivers  map[component.ID]component.Config
	processors map[component.ID]component.Config
	exporters  map[component.ID]component.Config
	pipelines  pipelines.Config
	// sinkOf names the Sink of each generated exporter.
	sinkOf map[component.ID]string
	// files are the absolute paths the file exporters write, checked again at Start.
	files    map[component.ID]string
	warnings []string
	// secrets are values scrubbed from errors and logs: sink credentials and YAML headers.
	secrets []string
}

// Names of the components generated for Sinks and for the YAML-less pipeline.
var (
	genReceiver = component.MustNewIDWithName("otlp", reservedPrefix)
	genLimiter  = component.MustNewIDWithName("memory_limiter", reservedPrefix)
	genBatch    = component.MustNewIDWithName("batch", reservedPrefix)
)

// generatedLimiterConfig is the memory_limiter of generated pipelines: it refuses data when
// the process nears 80% of its memory limit (cgroup or host) and never forces a GC, which in a
// shared process would be every tenant's collector forcing GCs of the whole server.
var generatedLimiterConfig = map[string]any{
	"check_interval":         "1s",
	"limit_percentage":       80,
	"spike_limit_percentage": 20,
}

// compile checks the YAML and the Sinks and builds the plan. It neither dials nor opens
// files; with fileDir it looks at the directory to refuse symlinks out of it.
func compile(yamlText []byte, sinks []Sink, fileDir string, f *factorySet) (*plan, error) {
	var p problems
	pl := &plan{
		receivers:  map[component.ID]component.Config{},
		processors: map[component.ID]component.Config{},
		exporters:  map[component.ID]component.Config{},
		pipelines:  pipelines.Config{},
		sinkOf:     map[component.ID]string{},
		files:      map[component.ID]string{},
	}
	raw, ok := parseYAML(yamlText, &p)
	if !ok {
		return nil, p.err()
	}
	if raw != nil {
		compileYAML(raw, fileDir, f, pl, &p)
	}
	addSinks(sinks, f, pl, &p)
	if err := p.err(); err != nil {
		return nil, err
	}
	return pl, nil
}

// parseYAML reads the YAML into plain maps with string keys. An empty document (only
// whitespace or comments) gives nil.
func parseYAML(text []byte, p *problems) (map[string]any, bool) {
	if len(text) > maxYAMLSize {
		p.add("", "the YAML is %d bytes; at most %d are accepted", len(text), maxYAMLSize)
		return nil, false
	}
	if len(bytes.TrimSpace(text)) == 0 {
		return nil, true
	}
	var doc any
	if err := yaml.Unmarshal(text, &doc); err != nil {
		p.add("", "invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil, false
	}
	if doc == nil {
		return nil, true
	}
	budget := maxNodes
	norm, ok := normalize(doc, "", 0, &budget, p)
	if !ok {
		return nil, false
	}
	m, isMap := norm.(map[string]any)
	if !isMap {
		p.add("", "the YAML must be a mapping (receivers:, processors:, exporters:, service:), not a %s", kindOf(norm))
		return nil, false
	}
	return m, true
}

// normalize turns what the YAML decoder gives into the types confmap takes (maps with string
// keys, slices, scalars) and refuses what the upstream collector would expand: ${env:X},
// ${file:/path} and the like would read the server's environment and files.
func normalize(v any, path string, depth int, budget *int, p *problems) (any, bool) {
	if depth > maxDepth {
		p.add(path, "nested more than %d levels", maxDepth)
		return nil, false
	}
	if *budget--; *budget < 0 {
		if *budget == -1 {
			p.add("", "the YAML has more than %d values (after expanding aliases)", maxNodes)
		}
		return nil, false
	}
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		ok := true
		for k, e := range t {
			if !checkKey(k, path, p) {
				ok = false
				continue
			}
			n, good := normalize(e, join(path, k), depth+1, budget, p)
			ok = ok && good
			out[k] = n
		}
		return out, ok
	case map[any]any:
		out := make(map[string]any, len(t))
		ok := true
		for k, e := range t {
			ks := fmt.Sprint(k)
			if !checkKey(ks, path, p) {
				ok = false
				continue
			}
			n, good := normalize(e, join(path, ks), depth+1, budget, p)
			ok = ok && good
			out[ks] = n
		}
		return out, ok
	case []any:
		out := make([]any, len(t))
		ok := true
		for i, e := range t {
			n, good := normalize(e, path+"["+strconv.Itoa(i)+"]", depth+1, budget, p)
			ok = ok && good
			out[i] = n
		}
		return out, ok
	case string:
		if strings.Contains(t, "${") {
			p.add(path, "%s: ${...} references are not expanded here (they would read the server's environment or files): write the value itself", quote(t))
			return nil, false
		}
		return t, true
	case nil, bool, int, int64, uint64, float64:
		return t, true
	case time.Time:
		return t.Format(time.RFC3339Nano), true
	default:
		return fmt.Sprint(t), true
	}
}

func checkKey(k, path string, p *problems) bool {
	if strings.Contains(k, confmap.KeyDelimiter) {
		p.add(join(path, k), "keys may not contain %q", confmap.KeyDelimiter)
		return false
	}
	return true
}

// join appends a key to a dotted path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindOf(v any) string {
	switch v.(type) {
	case []any:
		return "list"
	case nil:
		return "null"
	default:
		return "scalar"
	}
}

// quote quotes a token for an error, cut to 80 bytes, with user info of a URL hidden.
func quote(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		u.User = url.User("REDACTED")
		s = u.String()
	}
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return strconv.Quote(s)
}

// asMap returns v as a mapping; null is an empty one.
func asMap(v any, path string, p *problems) (map[string]any, bool) {
	switch t := v.(type) {
	case nil:
		return map[string]any{}, true
	case map[string]any:
		return t, true
	default:
		p.add(path, "want a mapping, got a %s", kindOf(v))
		return nil, false
	}
}

// compileYAML checks the user's collector YAML section by section.
func compileYAML(raw map[string]any, fileDir string, f *factorySet, pl *plan, p *problems) {
	for _, k := range sortedKeys(raw) {
		switch k {
		case "receivers", "processors", "exporters", "service":
		case "extensions":
			if m, ok := raw[k].(map[string]any); ok && len(m) > 0 {
				pl.warnings = append(pl.warnings, "extensions: ignored: extensions (health_check, pprof, zpages, authenticators, storage) would open ports or reach the server's disk; exporters may not refer to them")
			}
		case "connectors":
			if m, ok := raw[k].(map[string]any); ok {
				for _, id := range sortedKeys(m) {
					p.add("connectors."+id, "connectors are not supported")
				}
			} else if raw[k] != nil {
				p.add("connectors", "connectors are not supported")
			}
		default:
			p.add(k, "unknown section (want receivers, processors, exporters or service)")
		}
	}

	defined := map[string]map[string]component.ID{"receivers": {}, "processors": {}, "exporters": {}}

	// Receivers: every otlp receiver is our in-process one; nothing else runs.
	if recv, ok := asMap(raw["receivers"], "receivers", p); ok {
		for _, name := range sortedKeys(recv) {
			path := "receivers." + name
			id, ok := parseID(name, path, p)
			if !ok {
				continue
			}
			// Defined even when refused below: the problem is reported here, not again at each
			// pipeline naming it.
			defined["receivers"][name] = id
			if id.Type().String() != "otlp" {
				p.add(path, "receiver type %q is refused: a project's collector runs inside the gateway and takes telemetry only from it; declare an \"otlp\" receiver (the gateway feeds it in-process)", id.Type().String())
				continue
			}
			if _, ok := asMap(recv[name], path, p); !ok {
				continue
			}
			if m, _ := recv[name].(map[string]any); len(m) > 0 {
				pl.warnings = append(pl.warnings, path+": protocols and endpoints are ignored: the gateway feeds this receiver in-process and no port is opened")
			}
			pl.receivers[id] = &inprocConfig{}
		}
	}

	if procs, ok := asMap(raw["processors"], "processors", p); ok {
		for _, name := range sortedKeys(procs) {
			path := "processors." + name
			id, ok := parseID(name, path, p)
			if !ok {
				continue
			}
			defined["processors"][name] = id
			fac, ok := f.processors[id.Type()]
			if !ok {
				p.add(path, "unknown processor type %q (supported: %s)", id.Type().String(), strings.Join(typeNames(f.processors), ", "))
				continue
			}
			m, ok := asMap(procs[name], path, p)
			if !ok {
				continue
			}
			if id.Type().String() == "memory_limiter" {
				if gc, set := m["garbage_collector"]; set && gc != nil {
					pl.warnings = append(pl.warnings, path+".garbage_collector: ignored: a project's memory limiter never forces a GC of the shared server")
				}
				m = cloneMap(m)
				m["garbage_collector"] = map[string]any{"enabled": false}
			}
			cfg := fac.CreateDefaultConfig()
			if !unmarshalInto(m, cfg, path, p) {
				continue
			}
			pl.processors[id] = cfg
		}
	}

	if exps, ok := asMap(raw["exporters"], "exporters", p); ok {
		for _, name := range sortedKeys(exps) {
			path := "exporters." + name
			id, ok := parseID(name, path, p)
			if !ok {
				continue
			}
			defined["exporters"][name] = id
			fac, ok := f.exporters[id.Type()]
			if !ok {
				p.add(path, "unknown exporter type %q (supported: %s)", id.Type().String(), strings.Join(typeNames(f.exporters), ", "))
				continue
			}
			m, ok := asMap(exps[name], path, p)
			if !ok {
				continue
			}
			if !checkExporterKeys(id.Type().String(), m, path, p) {
				continue
			}
			pl.secrets = append(pl.secrets, collectSecrets(m)...)
			cfg := fac.CreateDefaultConfig()
			if !unmarshalInto(guarded(id.Type().String(), m), cfg, path, p) {
				continue
			}
			if fc, isFile := cfg.(*fileexporter.Config); isFile {
				abs, err := confinePath(fileDir, fc.Path)
				if err != nil {
					p.add(path+".path", "%s: %v", quote(fc.Path), err)
					continue
				}
				pl.files[id] = abs
			}
			pl.exporters[id] = cfg
		}
	}

	svc, ok := asMap(raw["service"], "service", p)
	if !ok {
		return
	}
	for _, k := range sortedKeys(svc) {
		switch k {
		case "pipelines":
		case "telemetry":
			if svc[k] != nil {
				pl.warnings = append(pl.warnings, "service.telemetry: ignored: the collector's own logs go to the server log and it serves no metrics endpoint")
			}
		case "extensions":
			if svc[k] != nil {
				pl.warnings = append(pl.warnings, "service.extensions: ignored (extensions are not run)")
			}
		default:
			p.add("service."+k, "unknown key (want pipelines)")
		}
	}
	pipes, ok := asMap(svc["pipelines"], "service.pipelines", p)
	if !ok {
		return
	}
	if len(pipes) == 0 {
		p.add("service.pipelines", "at least one pipeline is required")
		return
	}
	for _, name := range sortedKeys(pipes) {
		path := "service.pipelines." + name
		var pid pipeline.ID
		if err := pid.UnmarshalText([]byte(name)); err != nil {
			p.add(path, "%s is not a pipeline name (traces, logs or metrics, optionally /name)", quote(name))
			continue
		}
		sig := Signal(pid.Signal().String())
		if !slices.Contains(AllSignals, sig) {
			p.add(path, "signal %q is not supported (traces, logs, metrics)", pid.Signal().String())
			continue
		}
		if strings.HasPrefix(pid.Name(), reservedPrefix) {
			p.add(path, "names starting with %q are reserved for generated pipelines", reservedPrefix)
			continue
		}
		body, ok := asMap(pipes[name], path, p)
		if !ok {
			continue
		}
		pc := &pipelines.PipelineConfig{}
		for _, k := range sortedKeys(body) {
			if k != "receivers" && k != "processors" && k != "exporters" {
				p.add(path+"."+k, "unknown key (want receivers, processors, exporters)")
			}
		}
		pc.Receivers = refs(body, "receivers", path, defined, p, nil)
		pc.Processors = refs(body, "processors", path, defined, p, nil)
		pc.Exporters = refs(body, "exporters", path, defined, p, func(id component.ID, at string) {
			if _, known := f.exporters[id.Type()]; known && !f.exporterSupports(id.Type(), sig) {
				p.add(at, "%q does not take %s", id.String(), sig)
			}
		})
		for _, k := range []string{"receivers", "exporters"} {
			if l, isList := body[k].([]any); body[k] == nil || isList && len(l) == 0 {
				p.add(path+"."+k, "at least one %s is required", strings.TrimSuffix(k, "s"))
			}
		}
		seen := map[component.ID]bool{}
		for i, id := range pc.Processors {
			if seen[id] {
				p.add(fmt.Sprintf("%s.processors[%d]", path, i), "%q is listed twice", id.String())
			}
			seen[id] = true
		}
		pl.pipelines[pid] = pc
	}
}

// refs reads one list of component names of a pipeline and checks each is defined.
func refs(body map[string]any, kind, path string, defined map[string]map[string]component.ID, p *problems, check func(component.ID, string)) []component.ID {
	v, set := body[kind]
	if !set || v == nil {
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		p.add(path+"."+kind, "want a list of %s names", strings.TrimSuffix(kind, "s"))
		return nil
	}
	var out []component.ID
	for i, e := range list {
		at := fmt.Sprintf("%s.%s[%d]", path, kind, i)
		name, ok := e.(string)
		if !ok {
			p.add(at, "want a name, got a %s", kindOf(e))
			continue
		}
		id, ok := defined[kind][name]
		if !ok {
			p.add(at, "%s is not defined", quote(name))
			continue
		}
		if check != nil {
			check(id, at)
		}
		out = append(out, id)
	}
	return out
}

// parseID reads type[/name] and refuses the reserved name prefix.
func parseID(s, path string, p *problems) (component.ID, bool) {
	var id component.ID
	if err := id.UnmarshalText([]byte(s)); err != nil {
		p.add(path, "%s is not a component name (type or type/name): %v", quote(s), err)
		return id, false
	}
	if strings.HasPrefix(id.Name(), reservedPrefix) {
		p.add(path, "names starting with %q are reserved for generated components", reservedPrefix)
		return id, false
	}
	return id, true
}

// refusedKeys are exporter settings a tenant may not use, by key at any depth, and why.
var refusedKeys = map[string]string{
	"auth":              "authenticators are extensions, which are not run: put the credential in headers",
	"middlewares":       "middlewares are extensions, which are not run",
	"dialer_middleware": "middlewares are extensions, which are not run",
	"tpm":               "a TPM is a device of the server",
	"proxy_url":         "egress goes direct from the gateway; a proxy is not configurable per project",
}

// checkExporterKeys refuses the settings that would reach the server's files, devices or
// extensions.
func checkExporterKeys(typ string, m map[string]any, path string, p *problems) bool {
	ok := true
	var walk func(v any, at string)
	walk = func(v any, at string) {
		mm, isMap := v.(map[string]any)
		if !isMap {
			return
		}
		for _, k := range sortedKeys(mm) {
			kp := at + "." + k
			if why, bad := refusedKeys[k]; bad && mm[k] != nil {
				p.add(kp, "refused: %s", why)
				ok = false
				continue
			}
			if strings.HasSuffix(k, "_file") && mm[k] != nil && mm[k] != "" {
				p.add(kp, "refused: it reads a file of the server; inline the PEM instead (ca_pem, cert_pem, key_pem)")
				ok = false
				continue
			}
			walk(mm[k], kp)
		}
	}
	walk(m, path)
	if q, isMap := m["sending_queue"].(map[string]any); isMap && q["storage"] != nil {
		p.add(path+".sending_queue.storage", "refused: persistent queues need a storage extension, which is not run")
		ok = false
	}
	switch typ {
	case "file":
		for _, k := range []string{"group_by", "encoding"} {
			if m[k] != nil {
				p.add(path+"."+k, "refused: %s", map[string]string{
					"group_by": "file names would be chosen by the telemetry itself",
					"encoding": "encodings are extensions, which are not run",
				}[k])
				ok = false
			}
		}
	case "prometheusremotewrite":
		if m["wal"] != nil {
			p.add(path+".wal", "refused: a write-ahead log writes to the server's disk")
			ok = false
		}
		for _, k := range []string{"endpoint"} {
			if s, isStr := m[k].(string); isStr && s != "" {
				if err := checkHTTPURL(s); err != nil {
					p.add(path+"."+k, "%s: %v", quote(s), err)
					ok = false
				}
			}
		}
	case "debug":
		if b, isBool := m["use_internal_logger"].(bool); isBool && !b {
			p.add(path+".use_internal_logger", "refused: the debug exporter writes only to the server log")
			ok = false
		}
		if m["output_paths"] != nil {
			p.add(path+".output_paths", "refused: the debug exporter writes only to the server log")
			ok = false
		}
	case "otlphttp", "otlp_http":
		for _, k := range []string{"endpoint", "traces_endpoint", "logs_endpoint", "metrics_endpoint", "profiles_endpoint"} {
			if s, isStr := m[k].(string); isStr && s != "" {
				if err := checkHTTPURL(s); err != nil {
					p.add(path+"."+k, "%s: %v", quote(s), err)
					ok = false
				}
			}
		}
	case "otlp", "otlp_grpc":
		if s, isStr := m["endpoint"].(string); isStr && s != "" {
			if err := checkGRPCEndpoint(s); err != nil {
				p.add(path+".endpoint", "%s: %v", quote(s), err)
				ok = false
			}
		}
	}
	return ok
}

// collectSecrets returns the header values and private keys of an exporter's raw config.
func collectSecrets(m map[string]any) []string {
	var out []string
	var walk func(v any, key string)
	walk = func(v any, key string) {
		switch t := v.(type) {
		case map[string]any:
			for k, e := range t {
				if key == "headers" {
					if s, ok := e.(string); ok {
						out = append(out, s)
					}
				}
				walk(e, k)
			}
		case string:
			if key == "key_pem" {
				out = append(out, t)
			}
		}
	}
	walk(m, "")
	return out
}

// unmarshalInto decodes a component's raw map into its factory's default config (unknown
// keys are errors) and runs the config's own validation.
func unmarshalInto(m map[string]any, cfg component.Config, path string, p *problems) bool {
	if err := confmap.NewFromStringMap(m).Unmarshal(cfg); err != nil {
		for _, line := range decodeErrorLines(err) {
			at, msg := path, line
			if sm := decodeErrorRE.FindStringSubmatch(line); sm != nil {
				msg = sm[2]
				// The decoder names a nested key ("tls", "sending_queue.batch") or, at the top,
				// the Go type ("otlphttpexporter.Config"), which means the component itself.
				if sm[1] != "" && !strings.ContainsAny(sm[1], "ABCDEFGHIJKLMNOPQRSTUVWXYZ*") {
					at = path + "." + sm[1]
				}
			}
			p.add(at, "%s", strings.Replace(msg, "has invalid keys:", "unknown keys:", 1))
		}
		return false
	}
	errs := validateConfig(reflect.ValueOf(cfg), nil, 0)
	for _, e := range errs {
		p.add(joinPath(path, e.path), "%s", strings.ReplaceAll(e.err.Error(), confmap.KeyDelimiter, "."))
	}
	return len(errs) == 0
}

// decodeErrorRE splits one decoder error into the key it names and the message.
var decodeErrorRE = regexp.MustCompile(`^'([^']*)' (.*)$`)

// decodeErrorLines flattens the decoder's error into one line per problem.
func decodeErrorLines(err error) []string {
	s := strings.ReplaceAll(err.Error(), confmap.KeyDelimiter, ".")
	s = strings.TrimPrefix(s, "decoding failed due to the following error(s):")
	var out []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.Join(strings.Fields(l), " ")
		l = strings.TrimPrefix(l, "error decoding ")
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func joinPath(base string, segs []string) string {
	out := base
	for _, s := range segs {
		if strings.HasPrefix(s, "[") {
			out += s
		} else {
			out += "." + s
		}
	}
	return out
}

// addSinks adds each Sink's exporter to every pipeline of the signals it takes, generating a
// pipeline (in-process receiver, memory_limiter, batch) for a signal that has none.
func addSinks(sinks []Sink, f *factorySet, pl *plan, p *problems) {
	for _, s := range sinks {
		se, err := s.exporter()
		pl.secrets = append(pl.secrets, sinkSecrets(s)...)
		if err != nil {
			p.add("", "%v", err)
			continue
		}
		var id component.ID
		if err := id.UnmarshalText([]byte(se.ID)); err != nil {
			p.add("", "sink %q: %v", s.Name, err)
			continue
		}
		if _, dup := pl.exporters[id]; dup {
			p.add("", "sink %q: two sinks have this name", s.Name)
			continue
		}
		fac := f.exporters[id.Type()]
		cfg := fac.CreateDefaultConfig()
		path := "sink " + strconv.Quote(s.Name)
		if !unmarshalInto(guarded(id.Type().String(), se.Config), cfg, path, p) {
			continue
		}
		pl.exporters[id] = cfg
		pl.sinkOf[id] = s.Name
		pl.secrets = append(pl.secrets, se.Secrets...)
		for _, sig := range se.Signals {
			joined := false
			for pid, pc := range pl.pipelines {
				if pid.Signal().String() == string(sig) {
					pc.Exporters = append(pc.Exporters, id)
					joined = true
				}
			}
			if !joined {
				pc := generated(pl, f, sig, p)
				pc.Exporters = append(pc.Exporters, id)
			}
		}
	}
}

// generated returns the pipeline <signal>/apoxy, creating it and its components.
func generated(pl *plan, f *factorySet, sig Signal, p *problems) *pipelines.PipelineConfig {
	var s pipeline.Signal
	switch sig {
	case Traces:
		s = pipeline.SignalTraces
	case Logs:
		s = pipeline.SignalLogs
	default:
		s = pipeline.SignalMetrics
	}
	pid := pipeline.NewIDWithName(s, reservedPrefix)
	if pc, ok := pl.pipelines[pid]; ok {
		return pc
	}
	if _, ok := pl.receivers[genReceiver]; !ok {
		pl.receivers[genReceiver] = &inprocConfig{}
		lim := f.processors[genLimiter.Type()].CreateDefaultConfig()
		m := cloneMap(generatedLimiterConfig)
		m["garbage_collector"] = map[string]any{"enabled": false}
		unmarshalInto(m, lim, "generated "+genLimiter.String(), p)
		pl.processors[genLimiter] = lim
		pl.processors[genBatch] = f.processors[genBatch.Type()].CreateDefaultConfig()
	}
	pc := &pipelines.PipelineConfig{
		Receivers:  []component.ID{genReceiver},
		Processors: []component.ID{genLimiter, genBatch},
	}
	pl.pipelines[pid] = pc
	return pc
}

// sinkSecrets are the credential values of a Sink, scrubbed from anything we log or report.
func sinkSecrets(s Sink) []string {
	out := []string{s.APIKey}
	for _, v := range s.Headers {
		out = append(out, v)
	}
	return out
}

// confinePath resolves a file exporter's path inside fileDir: relative, no "..", and no
// symlink of fileDir leading out of it.
func confinePath(fileDir, p string) (string, error) {
	if fileDir == "" {
		return "", fmt.Errorf("the file exporter is not available here (no directory is set aside for project files)")
	}
	if p == "" {
		return "", fmt.Errorf("path is required")
	}
	if filepath.IsAbs(p) || strings.HasPrefix(p, "/") || strings.HasPrefix(p, `\`) || filepath.VolumeName(p) != "" {
		return "", fmt.Errorf("must be relative to the project's file directory")
	}
	for _, part := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }) {
		if part == ".." {
			return "", fmt.Errorf("must not contain \"..\"")
		}
	}
	clean := filepath.Clean(p)
	if clean == "." {
		return "", fmt.Errorf("must name a file")
	}
	abs := filepath.Join(fileDir, clean)
	if err := checkNoEscape(fileDir, abs); err != nil {
		return "", err
	}
	return abs, nil
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func typeNames[V any](m map[component.Type]V) []string {
	var out []string
	for t := range m {
		out = append(out, t.String())
	}
	sort.Strings(out)
	return out
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}
