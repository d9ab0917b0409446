// Package observe serves a project's live telemetry over its API (access logs for `apoxy
// logs`, per-route figures for `apoxy top`) and holds the client side of both.
package observe

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1a2 "apoxy.dev/apoxy/api/core/v1alpha2"
	"apoxy.dev/apoxy/internal/accesslog"
)

// Paths of the project API (below /projects/<name>) the handlers are mounted at.
const (
	LogsPath = "/telemetry/logs"
	TopPath  = "/telemetry/top"
)

// LogQuery is what `apoxy logs` asks for.
type LogQuery struct {
	// Follow keeps the response open and streams new lines.
	Follow bool
	// Since returns kept lines from this time on (zero: all kept).
	Since time.Time
	// Tail returns at most this many kept lines (0: all).
	Tail int
	// Route keeps lines of routes whose name has these path segments, in order
	// ("api-route", "default/api-route", "httproute/default/api-route/rule/1").
	Route string
	// Status keeps lines whose status is in one of these ranges.
	Status []string
	// Function keeps lines of this edge function: its requests' access lines and its console
	// output (NAME in any namespace, or NAMESPACE/NAME).
	Function string
	// JSON: each line as a JSON object; a JSON access-log line is passed as is, a text line is
	// wrapped as {"time","route","status","line"}.
	JSON bool
}

// Values encodes the query as URL parameters.
func (q LogQuery) Values() map[string]string {
	v := map[string]string{}
	if q.Follow {
		v["follow"] = "true"
	}
	if !q.Since.IsZero() {
		v["since"] = q.Since.UTC().Format(time.RFC3339Nano)
	}
	if q.Tail > 0 {
		v["tail"] = strconv.Itoa(q.Tail)
	}
	if q.Route != "" {
		v["route"] = q.Route
	}
	if len(q.Status) > 0 {
		v["status"] = strings.Join(q.Status, ",")
	}
	if q.Function != "" {
		v["function"] = q.Function
	}
	if q.JSON {
		v["output"] = "json"
	}
	return v
}

// parseLogQuery reads a LogQuery from request parameters; errors name the parameter.
func parseLogQuery(r *http.Request) (LogQuery, error) {
	p := r.URL.Query()
	var q LogQuery
	var err error
	if v := p.Get("follow"); v != "" {
		if q.Follow, err = strconv.ParseBool(v); err != nil {
			return q, fmt.Errorf("follow: %q is not a boolean", v)
		}
	}
	if v := p.Get("since"); v != "" {
		if q.Since, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return q, fmt.Errorf("since: %q is not an RFC 3339 time", v)
		}
	}
	if v := p.Get("tail"); v != "" {
		if q.Tail, err = strconv.Atoi(v); err != nil || q.Tail < 0 {
			return q, fmt.Errorf("tail: %q is not a count of lines", v)
		}
	}
	q.Route, q.Function = p.Get("route"), p.Get("function")
	if v := p.Get("status"); v != "" {
		q.Status = strings.Split(v, ",")
		for _, s := range q.Status {
			if _, _, err := corev1a2.ParseStatusRange(s); err != nil {
				return q, fmt.Errorf("status: %q %v", s, err)
			}
		}
	}
	switch v := p.Get("output"); v {
	case "", "text":
	case "json":
		q.JSON = true
	default:
		return q, fmt.Errorf("output: %q is not text or json", v)
	}
	return q, nil
}

// matcher builds the entry filter of a query (nil: every line).
func (q LogQuery) matcher(project string) func(*accesslog.Entry) bool {
	type rng struct{ lo, hi int }
	var ranges []rng
	for _, s := range q.Status {
		lo, hi, _ := corev1a2.ParseStatusRange(s)
		ranges = append(ranges, rng{lo, hi})
	}
	var route []string
	if q.Route != "" {
		route = strings.Split(strings.Trim(q.Route, "/"), "/")
	}
	if len(ranges) == 0 && route == nil && q.Function == "" {
		return nil
	}
	return func(e *accesslog.Entry) bool {
		if len(ranges) > 0 && !slices.ContainsFunc(ranges, func(r rng) bool { return e.Status >= r.lo && e.Status <= r.hi }) {
			return false
		}
		if q.Function != "" && e.Function != q.Function && !strings.HasSuffix(e.Function, "/"+q.Function) {
			return false
		}
		return route == nil || hasSegments(strings.Split(strings.TrimPrefix(e.Route, project+"/"), "/"), route)
	}
}

// hasSegments reports whether want occurs in have as consecutive segments.
func hasSegments(have, want []string) bool {
	for i := 0; i+len(want) <= len(have); i++ {
		if slices.Equal(have[i:i+len(want)], want) {
			return true
		}
	}
	return false
}

// LogSource is the data plane's side: a project's access-log stream.
type LogSource interface {
	Logs(project string) *accesslog.Stream
}

// followBuffer is how many lines a follower may fall behind before it loses some.
const followBuffer = 4096

// LogsHandler serves a project's access log: the kept lines the query selects, then (follow)
// new ones as they come, each flushed at once, until the client leaves. A client that
// reads too slowly loses lines, and is told how many in a comment line ("# 12 lines
// dropped: reading too slowly") rather than slowing the gateway.
func LogsHandler(src LogSource, project string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "use GET", http.StatusMethodNotAllowed)
			return
		}
		q, err := parseLogQuery(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		stream := src.Logs(project)
		match := q.matcher(project)
		var f *accesslog.Follower
		if q.Follow { // before reading the kept lines, so none falls between
			f = stream.Follow(followBuffer, match)
			defer f.Close()
		}
		kept := stream.Recent(q.Since, q.Tail, match)
		if q.JSON {
			w.Header().Set("Content-Type", "application/x-ndjson")
		} else {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		fl, _ := w.(http.Flusher)
		var last uint64
		for _, e := range kept {
			writeEntry(w, &e, q.JSON)
			last = e.Seq
		}
		if fl != nil {
			fl.Flush()
		}
		if f == nil {
			return
		}
		var dropped uint64
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case e, ok := <-f.C():
				if !ok {
					return
				}
				for {
					if e.Seq > last { // else already sent among the kept lines
						writeEntry(w, &e, q.JSON)
					}
					if len(f.C()) == 0 {
						break
					}
					e = <-f.C() // drain what is queued, then flush once
				}
				if fl != nil {
					fl.Flush()
				}
			case <-tick.C:
				if d := f.Dropped(); d > dropped {
					if q.JSON {
						fmt.Fprintf(w, "{\"dropped\":%d}\n", d-dropped)
					} else {
						fmt.Fprintf(w, "# %d lines dropped: reading too slowly\n", d-dropped)
					}
					dropped = d
					if fl != nil {
						fl.Flush()
					}
				}
			}
		}
	})
}

// writeEntry writes one line, as JSON when asked: JSON lines pass as they are.
func writeEntry(w http.ResponseWriter, e *accesslog.Entry, asJSON bool) {
	if !asJSON || (len(e.Line) > 0 && e.Line[0] == '{') {
		w.Write(e.Line)
		return
	}
	b, _ := json.Marshal(struct {
		Time   time.Time `json:"time"`
		Route  string    `json:"route,omitempty"`
		Status int       `json:"status,omitempty"`
		Line   string    `json:"line"`
	}{e.Time, e.Route, e.Status, strings.TrimSuffix(string(e.Line), "\n")})
	w.Write(append(b, '\n'))
}
