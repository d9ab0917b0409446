package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"

	"apoxy.dev/apoxy/internal/observe"
)

// topOrders are the columns `apoxy top` can sort by ('s' cycles through them).
var topOrders = []string{"rps", "errors", "p99", "route"}

func newTopCommand(getter *clientGetter, streams genericiooptions.IOStreams) *cobra.Command {
	var (
		plain      bool
		iterations int
		interval   time.Duration
		order      string
	)
	c := &cobra.Command{
		Use:   "top",
		Short: "Show live per-route request rate, error rate and latency percentiles",
		Long: `Show each route rule's requests per second, share of 5xx answers and p50/p95/p99
latency over the last interval, refreshed every second, for the current project.

In a terminal it is a full-screen view: q quits, s changes the sort (rps, errors, p99, route).
When the output is not a terminal (or with --plain) it prints a table per interval instead;
--iterations stops after that many.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(topOrders, order) {
				return fmt.Errorf("--sort %q: use one of %s", order, strings.Join(topOrders, ", "))
			}
			if interval < 100*time.Millisecond {
				return fmt.Errorf("--interval %v: at least 100ms", interval)
			}
			rc, err := getter.ToRESTConfig()
			if err != nil {
				return err
			}
			project, _ := getter.project()
			fetch := func(ctx context.Context) (*observe.TopSnapshot, error) { return fetchTop(ctx, rc) }
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			f, isFile := streams.Out.(*os.File)
			if plain || !isFile || !term.IsTerminal(int(f.Fd())) {
				return topPlain(ctx, fetch, streams.Out, project, order, interval, iterations)
			}
			m := &topModel{fetch: fetch, project: project, order: order, interval: interval, iterations: iterations}
			_, err = tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(ctx), tea.WithInput(streams.In), tea.WithOutput(streams.Out)).Run()
			if err == nil {
				err = m.err
			}
			return err
		},
	}
	fl := c.Flags()
	fl.BoolVar(&plain, "plain", false, "print a table per interval instead of the full-screen view")
	fl.IntVar(&iterations, "iterations", 0, "stop after this many refreshes (0: until interrupted)")
	fl.DurationVar(&interval, "interval", time.Second, "time between refreshes")
	fl.StringVar(&order, "sort", "rps", "sort by rps, errors, p99 or route")
	return c
}

func fetchTop(ctx context.Context, rc *rest.Config) (*observe.TopSnapshot, error) {
	body, err := projectGet(ctx, rc, observe.TopPath, nil)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	var snap observe.TopSnapshot
	if err := json.NewDecoder(io.LimitReader(body, 64<<20)).Decode(&snap); err != nil {
		return nil, fmt.Errorf("reading the figures: %w", err)
	}
	return &snap, nil
}

// sortRates orders rows by a column, highest first (route: by name).
func sortRates(rows []observe.RouteRates, order string) {
	slices.SortStableFunc(rows, func(a, b observe.RouteRates) int {
		switch order {
		case "errors":
			return cmp.Or(cmp.Compare(b.ErrorRatio, a.ErrorRatio), cmp.Compare(b.RPS, a.RPS))
		case "p99":
			return cmp.Compare(b.P99, a.P99)
		case "route":
			return cmp.Or(cmp.Compare(a.Route, b.Route), cmp.Compare(a.Gateway, b.Gateway))
		}
		return cmp.Or(cmp.Compare(b.RPS, a.RPS), cmp.Compare(a.Route, b.Route))
	})
}

// writeTopTable prints the rows as aligned columns.
func writeTopTable(w io.Writer, rows []observe.RouteRates) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "RPS\tERR%\tP50\tP95\tP99\tTOTAL\t\tROUTE\tGATEWAY\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%.1f\t%.1f\t%s\t%s\t%s\t%d\t\t%s\t%s\t\n", r.RPS, r.ErrorRatio*100, latency(r.P50), latency(r.P95), latency(r.P99), r.Total, r.Route, r.Gateway)
	}
	tw.Flush()
}

// latency prints a percentile compactly ("-" when nothing was measured).
func latency(d time.Duration) string {
	switch {
	case d < 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// topPlain prints a table per interval (for pipes, logs and scripts).
func topPlain(ctx context.Context, fetch func(context.Context) (*observe.TopSnapshot, error), out io.Writer, project, order string, interval time.Duration, iterations int) error {
	var prev *observe.TopSnapshot
	for i := 0; iterations == 0 || i < iterations; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(interval):
			}
		}
		cur, err := fetch(ctx)
		if err != nil {
			return err
		}
		rows := observe.Rates(prev, cur)
		sortRates(rows, order)
		fmt.Fprintf(out, "%s  project %s  %d routes\n", cur.Time.Local().Format("15:04:05"), project, len(rows))
		writeTopTable(out, rows)
		fmt.Fprintln(out)
		prev = cur
	}
	return nil
}

// topModel is the full-screen view.
type topModel struct {
	fetch      func(context.Context) (*observe.TopSnapshot, error)
	project    string
	order      string
	interval   time.Duration
	iterations int
	prev, cur  *observe.TopSnapshot
	rows       []observe.RouteRates
	refreshes  int
	err        error
	width      int
}

type topSnapshotMsg struct {
	snap *observe.TopSnapshot
	err  error
}

type topTickMsg struct{}

func (m *topModel) load() tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := m.fetch(ctx)
		return topSnapshotMsg{s, err}
	}
}

func (m *topModel) Init() tea.Cmd { return m.load() }

func (m *topModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		switch msg.String() {
		case "q", "ctrl+c", "esc":
			return m, tea.Quit
		case "s":
			m.order = topOrders[(slices.Index(topOrders, m.order)+1)%len(topOrders)]
			sortRates(m.rows, m.order)
		}
	case tea.WindowSizeMsg:
		m.width = msg.Width
	case topSnapshotMsg:
		if msg.err != nil {
			m.err = msg.err
			return m, tea.Quit
		}
		m.prev, m.cur = m.cur, msg.snap
		m.rows = observe.Rates(m.prev, m.cur)
		sortRates(m.rows, m.order)
		m.refreshes++
		if m.iterations > 0 && m.refreshes >= m.iterations {
			return m, tea.Quit
		}
		return m, tea.Tick(m.interval, func(time.Time) tea.Msg { return topTickMsg{} })
	case topTickMsg:
		return m, m.load()
	}
	return m, nil
}

func (m *topModel) View() string {
	var b strings.Builder
	when := "loading"
	if m.cur != nil {
		when = m.cur.Time.Local().Format("15:04:05")
	}
	fmt.Fprintf(&b, "\x1b[1mapoxy top\x1b[0m  project %s  %s  %d routes  sort: %s  (s: sort, q: quit)\n\n", m.project, when, len(m.rows), m.order)
	writeTopTable(&b, m.rows)
	if len(m.rows) == 0 && m.cur != nil {
		b.WriteString("\nno requests yet\n")
	}
	return b.String()
}
