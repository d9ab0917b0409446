package component

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// journal records what the fake components did, in order.
type journal struct {
	mu     sync.Mutex
	events []string
}

func (j *journal) add(e string) {
	j.mu.Lock()
	j.events = append(j.events, e)
	j.mu.Unlock()
}

func (j *journal) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.events)
}

// fake is a component whose start can fail, whose readiness the test sets, and whose stop
// may block until released.
type fake struct {
	name     string
	j        *journal
	startErr error
	mu       sync.Mutex
	notReady error
	release  chan struct{} // if set, the shutdown waits for it
	stopper  Stopper
	stops    int
}

func (f *fake) Name() string { return f.name }

func (f *fake) Start(context.Context) error {
	if f.startErr != nil {
		f.j.add("fail " + f.name)
		return f.startErr
	}
	f.j.add("start " + f.name)
	return nil
}

func (f *fake) Ready() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.notReady
}

func (f *fake) setReady(err error) {
	f.mu.Lock()
	f.notReady = err
	f.mu.Unlock()
}

func (f *fake) Stop(ctx context.Context) error {
	return f.stopper.Stop(ctx, func() error {
		if f.release != nil {
			<-f.release
		}
		f.mu.Lock()
		f.stops++
		f.mu.Unlock()
		f.j.add("stop " + f.name)
		return nil
	})
}

func fakes(j *journal, names ...string) []*fake {
	var out []*fake
	for _, n := range names {
		out = append(out, &fake{name: n, j: j})
	}
	return out
}

func runner(fs []*fake) *Runner {
	cs := make([]Component, len(fs))
	for i, f := range fs {
		cs[i] = f
	}
	return NewRunner(nil, cs...)
}

// TestStartInOrderStopInReverse: components start in list order and stop in reverse, each
// once, however often Stop is called.
func TestStartInOrderStopInReverse(t *testing.T) {
	j := &journal{}
	fs := fakes(j, "admin", "api", "data", "ctrl")
	r := runner(fs)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Ready(); err != nil {
		t.Fatalf("Ready after start: %v", err)
	}
	for range 3 {
		if err := r.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"start admin", "start api", "start data", "start ctrl", "stop ctrl", "stop data", "stop api", "stop admin"}
	if got := j.list(); !slices.Equal(got, want) {
		t.Fatalf("events:\n got %q\nwant %q", got, want)
	}
	for _, f := range fs {
		if f.stops != 1 {
			t.Errorf("%s stopped %d times", f.name, f.stops)
		}
	}
	if err := r.Start(context.Background()); err == nil {
		t.Error("Start after Stop succeeded")
	}
}

// TestFailingStartUnwinds: a component that fails to start stops the ones started before it,
// in reverse, is not stopped itself, the ones after it are never started, and the error names it.
func TestFailingStartUnwinds(t *testing.T) {
	j := &journal{}
	fs := fakes(j, "admin", "api", "data", "ctrl")
	fs[2].startErr = errors.New("port 80 taken")
	r := runner(fs)
	err := r.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "start data: port 80 taken") {
		t.Fatalf("error %v, want it to name data and its reason", err)
	}
	want := []string{"start admin", "start api", "fail data", "stop api", "stop admin"}
	if got := j.list(); !slices.Equal(got, want) {
		t.Fatalf("events:\n got %q\nwant %q", got, want)
	}
	if err := r.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := j.list(); len(got) != len(want) {
		t.Fatalf("Stop after a failed start did more: %q", got)
	}
	for _, s := range r.Status() {
		if s.Err == nil || s.Err.Error() != "stopped" {
			t.Errorf("%s: %v, want stopped", s.Name, s.Err)
		}
	}
}

// TestComponentStopIdempotent: Stopper runs the shutdown once for any number of calls, also
// concurrent ones, and a caller whose deadline passes gets its ctx error while the shutdown
// goes on.
func TestComponentStopIdempotent(t *testing.T) {
	j := &journal{}
	f := &fake{name: "data", j: j, release: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := f.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop past its deadline: %v", err)
	}
	if !f.stopper.Stopping() {
		t.Error("Stopping false after Stop")
	}
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if err := f.Stop(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	time.Sleep(10 * time.Millisecond)
	close(f.release)
	wg.Wait()
	if f.stops != 1 {
		t.Fatalf("shutdown ran %d times", f.stops)
	}
}

// TestReadiness: Status has one entry per component in list order; a component is ready only
// while running and its Ready says so; Ready names the first one that is not, with its reason.
func TestReadiness(t *testing.T) {
	j := &journal{}
	fs := fakes(j, "api", "ctrl")
	r := runner(fs)
	st := r.Status()
	if len(st) != 2 || st[0].Name != "api" || st[1].Name != "ctrl" || st[0].Err == nil || st[0].Err.Error() != "not started" {
		t.Fatalf("before start: %+v", st)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	fs[1].setReady(errors.New("project default: configuration not applied yet"))
	if err := r.Ready(); err == nil || err.Error() != "ctrl: project default: configuration not applied yet" {
		t.Fatalf("Ready: %v", err)
	}
	st = r.Status()
	if st[0].Err != nil || st[1].Err == nil {
		t.Fatalf("status: %+v", st)
	}
	fs[1].setReady(nil)
	if err := r.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	// While a component stops it is not ready, whatever its Ready says.
	fs[0].release = make(chan struct{})
	go r.Stop(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for {
		st = r.Status()
		if st[0].Err != nil && st[0].Err.Error() == "stopping" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status while stopping: %+v", st)
		}
		time.Sleep(time.Millisecond)
	}
	if st[1].Err == nil || st[1].Err.Error() != "stopped" {
		t.Fatalf("ctrl while api stops: %v", st[1].Err)
	}
	close(fs[0].release)
	if err := r.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestDuplicateNames: two components of one name are a programming error.
func TestDuplicateNames(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	runner(fakes(&journal{}, "api", "api"))
}
