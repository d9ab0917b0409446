package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"

	"apoxy.dev/apoxy/internal/function/kv"
)

// newKVCommand is `apoxy kv get|put|list|delete FUNCTION ...`: an edge function's key-value
// namespace, as its code sees it through env.KV.
func newKVCommand(getter *clientGetter, streams genericiooptions.IOStreams) *cobra.Command {
	c := &cobra.Command{Use: "kv", Short: "Read and write an EdgeFunction's key-value store (env.KV)"}
	fn := func(name string) string {
		if strings.Contains(name, "/") {
			return name
		}
		ns := getter.g.namespace
		if ns == "" {
			ns = "default"
		}
		return ns + "/" + name
	}
	do := func(ctx context.Context, method string, params url.Values, body io.Reader) ([]byte, http.Header, error) {
		rc, err := getter.ToRESTConfig()
		if err != nil {
			return nil, nil, err
		}
		return projectDo(ctx, rc, method, kv.Path, params, body)
	}
	c.AddCommand(&cobra.Command{
		Use: "get FUNCTION KEY", Short: "Print a key's value", Args: cobra.ExactArgs(2),
		Example: "  apoxy kv get auth-check session:42",
		RunE: func(cmd *cobra.Command, args []string) error {
			b, _, err := do(cmd.Context(), http.MethodGet, url.Values{"function": {fn(args[0])}, "key": {args[1]}}, nil)
			if err != nil {
				return err
			}
			_, err = streams.Out.Write(b)
			return err
		},
	})
	var ttl, metadata string
	put := &cobra.Command{
		Use: "put FUNCTION KEY VALUE", Short: "Store a value (VALUE - reads standard input)", Args: cobra.ExactArgs(3),
		Example: "  apoxy kv put auth-check allow:alice yes --ttl 1h\n  apoxy kv put auth-check config - < config.json",
		RunE: func(cmd *cobra.Command, args []string) error {
			var body io.Reader = strings.NewReader(args[2])
			if args[2] == "-" {
				body = streams.In
				if body == nil {
					body = os.Stdin
				}
			}
			p := url.Values{"function": {fn(args[0])}, "key": {args[1]}}
			if ttl != "" {
				p.Set("ttl", ttl)
			}
			if metadata != "" {
				p.Set("metadata", metadata)
			}
			_, _, err := do(cmd.Context(), http.MethodPut, p, body)
			return err
		},
	}
	put.Flags().StringVar(&ttl, "ttl", "", "expire the key after this long (60s, 1h)")
	put.Flags().StringVar(&metadata, "metadata", "", "a JSON value stored with the key (at most 1024 bytes)")
	c.AddCommand(put)
	var prefix string
	list := &cobra.Command{
		Use: "list FUNCTION", Short: "List keys (all pages), in order", Args: cobra.ExactArgs(1),
		Example: "  apoxy kv list auth-check --prefix session:",
		RunE: func(cmd *cobra.Command, args []string) error {
			w := tabwriter.NewWriter(streams.Out, 0, 8, 2, ' ', 0)
			fmt.Fprintln(w, "KEY\tEXPIRES\tMETADATA")
			cursor := ""
			for {
				b, _, err := do(cmd.Context(), http.MethodGet, url.Values{"function": {fn(args[0])}, "prefix": {prefix}, "cursor": {cursor}}, nil)
				if err != nil {
					return err
				}
				var page kv.ListResponse
				if err := json.Unmarshal(b, &page); err != nil {
					return fmt.Errorf("reading the key list: %w", err)
				}
				for _, k := range page.Keys {
					exp := "-"
					if k.Expires != nil {
						exp = k.Expires.Format("2006-01-02T15:04:05Z")
					}
					fmt.Fprintf(w, "%s\t%s\t%s\n", k.Name, exp, k.Metadata)
				}
				if cursor = page.Cursor; cursor == "" {
					break
				}
			}
			return w.Flush()
		},
	}
	list.Flags().StringVar(&prefix, "prefix", "", "only keys starting with this")
	c.AddCommand(list)
	c.AddCommand(&cobra.Command{
		Use: "delete FUNCTION KEY", Short: "Delete a key", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, _, err := do(cmd.Context(), http.MethodDelete, url.Values{"function": {fn(args[0])}, "key": {args[1]}}, nil)
			return err
		},
	})
	return c
}

// projectDo sends a request to a non-resource path of the project's API with the CLI's
// credentials and returns a 2xx answer's body; other answers become an error with the
// server's reason.
func projectDo(ctx context.Context, rc *rest.Config, method, path string, params url.Values, body io.Reader) ([]byte, http.Header, error) {
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, nil, err
	}
	u := strings.TrimSuffix(rc.Host, "/") + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	if body == nil {
		body = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("server %s: %w", rc.Host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, kv.DefaultMaxValueBytes+1))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, nil, fmt.Errorf("%s", strings.TrimSpace(string(b)))
	}
	return b, resp.Header, nil
}
