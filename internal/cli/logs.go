package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"

	"apoxy.dev/apoxy/internal/observe"
)

func newLogsCommand(getter *clientGetter, streams genericiooptions.IOStreams) *cobra.Command {
	var (
		q      observe.LogQuery
		since  string
		output string
	)
	c := &cobra.Command{
		Use:   "logs",
		Short: "Print the project's access log (-f to follow it)",
		Long: `Print the project's recent access-log lines, as its Proxies format them
(spec.telemetry.accessLogs), and with -f keep printing new ones as requests end.

The server keeps each project's recent lines in memory (about 256 KiB); for history, send
logs to a sink (spec.telemetry.thirdPartySinks, CloudMonitoringIntegration).`,
		Example: `  apoxy logs --tail 20
  apoxy logs -f --status 5xx
  apoxy logs -f --route api-route -o json
  apoxy logs --since 10m --status 400-499,503`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch output {
			case "", "text":
			case "json":
				q.JSON = true
			default:
				return fmt.Errorf("--output %q: use text or json", output)
			}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				q.Since = t
			}
			rc, err := getter.ToRESTConfig()
			if err != nil {
				return err
			}
			return streamLogs(cmd.Context(), rc, q, streams.Out)
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&q.Follow, "follow", "f", false, "keep printing new lines until interrupted")
	fl.StringVar(&since, "since", "", "only lines from this long ago (10m, 1h) or this time (RFC 3339)")
	fl.IntVar(&q.Tail, "tail", 0, "only the last N kept lines (default: all)")
	fl.StringVar(&q.Route, "route", "", "only a route's lines: its name, namespace/name, or kind/namespace/name/rule/N")
	fl.StringSliceVar(&q.Status, "status", nil, "only these statuses: 404, a class 5xx, a range 400-499 (repeat or comma-separate)")
	fl.StringVar(&q.Function, "function", "", "only lines of this edge function")
	fl.StringVarP(&output, "output", "o", "text", "text (the lines as formatted) or json (one JSON object per line)")
	return c
}

// parseSince reads --since: a duration back from now, or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %q: give a positive duration (10m) or a time", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: give a duration (10m, 1h30m) or an RFC 3339 time (2026-12-01T10:00:00Z)", s)
}

// streamLogs prints the lines the server sends until it ends the response (or ctx ends).
func streamLogs(ctx context.Context, rc *rest.Config, q observe.LogQuery, out io.Writer) error {
	body, err := projectGet(ctx, rc, observe.LogsPath, q.Values())
	if err != nil {
		return err
	}
	defer body.Close()
	r := bufio.NewReaderSize(body, 64<<10)
	w := bufio.NewWriter(out)
	for {
		line, err := r.ReadSlice('\n')
		if len(line) > 0 {
			w.Write(line)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if r.Buffered() == 0 || err != nil {
			if ferr := w.Flush(); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF || ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the log stream: %w", err)
		}
	}
}

// projectGet GETs a non-resource path of the project's API with the CLI's credentials and
// returns the body of a 200 response; other answers become an error with the server's reason.
func projectGet(ctx context.Context, rc *rest.Config, path string, params map[string]string) (io.ReadCloser, error) {
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, err
	}
	u := strings.TrimSuffix(rc.Host, "/") + path
	if len(params) > 0 {
		v := url.Values{}
		for k, p := range params {
			v.Set(k, p)
		}
		u += "?" + v.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("server %s: %w", rc.Host, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("server %s: %s: %s", rc.Host, resp.Status, strings.TrimSpace(string(msg)))
	}
	return resp.Body, nil
}
