// Package component runs the long-lived parts of the process (API server, controllers, data
// plane, admin listener, and later a DNS server or a tunnel endpoint) from one ordered list:
// started in order, stopped in reverse, their readiness reported together. A new part is a
// type implementing Component and one entry in the list (internal/platform), not new start,
// stop and readiness code in the platform and the CLI.
package component

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Component is one long-lived part of the process.
//
// Its methods may be called from any goroutine. A Runner calls Start once, then Stop once
// (and only if Start succeeded); Ready may be called at any time, before Start and after Stop
// included.
type Component interface {
	// Name identifies the component in logs, errors and /readyz lines ("api-server"). It is
	// short, lower-case, unique in the list and never changes.
	Name() string
	// Start returns once the component serves (it may answer, accept and do its job) or has
	// failed. On failure it returns an error and leaves nothing running: the Runner does not
	// call Stop on it. ctx bounds the start only: the component runs until Stop, not until ctx
	// ends.
	Start(ctx context.Context) error
	// Ready reports whether the component can do its job now: nil if so, else an error whose
	// message says why not ("project team-a: configuration not applied yet"). It is cheap and
	// does not block (the admin listener calls it on every /readyz).
	Ready() error
	// Stop shuts the component down gracefully: it stops taking new work, lets work in
	// progress finish, and releases what it holds. It returns once done, or with ctx's error
	// when ctx ends first (shutdown then goes on in the background). It is idempotent: later
	// and concurrent calls wait for the same shutdown.
	Stop(ctx context.Context) error
}

// Status is one component's readiness at one moment.
type Status struct {
	Name string
	// Err says why the component is not ready; nil when it is.
	Err error
}

// state is where a Runner is with one component.
type state int

const (
	notStarted state = iota
	starting
	running
	stopping
	stopped
)

func (s state) String() string {
	switch s {
	case notStarted:
		return "not started"
	case starting:
		return "starting"
	case stopping:
		return "stopping"
	case stopped:
		return "stopped"
	}
	return "running"
}

// Runner starts an ordered list of components, stops them in reverse order and reports their
// readiness. Order the list so that each component comes after what it needs: it is started
// once those serve and stopped while they still do.
type Runner struct {
	log        *slog.Logger
	components []Component

	// lifecycle is held by Start and by the shutdown, so one never runs during the other.
	lifecycle sync.Mutex
	mu        sync.Mutex // guards states
	states    []state
	// stop runs the shutdown once for every Stop call.
	stop Stopper
}

// NewRunner returns a runner for components, in start order. Nothing is started. Names must
// be unique.
func NewRunner(log *slog.Logger, components ...Component) *Runner {
	if log == nil {
		log = slog.Default()
	}
	seen := map[string]bool{}
	for _, c := range components {
		if seen[c.Name()] {
			panic(fmt.Sprintf("component: %q listed twice", c.Name()))
		}
		seen[c.Name()] = true
	}
	return &Runner{log: log, components: components, states: make([]state, len(components))}
}

// Components returns the list, in start order.
func (r *Runner) Components() []Component { return append([]Component(nil), r.components...) }

// Start starts every component in order, each once the previous one serves. If one fails, the
// ones already started are stopped, in reverse order, and the error names the one that
// failed. Start may be called once; after Stop it fails.
func (r *Runner) Start(ctx context.Context) error {
	r.lifecycle.Lock()
	defer r.lifecycle.Unlock()
	for i, c := range r.components {
		r.mu.Lock()
		st := r.states[i]
		if st == notStarted {
			r.states[i] = starting
		}
		r.mu.Unlock()
		if st != notStarted {
			return fmt.Errorf("start %s: already %s", c.Name(), st)
		}
		t0 := time.Now()
		err := c.Start(ctx)
		r.mu.Lock()
		if err != nil {
			r.states[i] = notStarted
		} else {
			r.states[i] = running
		}
		r.mu.Unlock()
		if err != nil {
			err = fmt.Errorf("start %s: %w", c.Name(), err)
			// The start context may be what failed; the unwinding is not bounded by it.
			if serr := r.stopAll(context.WithoutCancel(ctx)); serr != nil {
				err = errors.Join(err, serr)
			}
			return err
		}
		r.log.Debug("component started", "component", c.Name(), "took", time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

// Stop stops the started components in reverse start order, each once the ones after it in
// the list have stopped (or failed to), and returns their errors joined. It is idempotent:
// later and concurrent calls wait for the same shutdown, each until its own ctx ends.
// Components not started yet are never started afterwards.
func (r *Runner) Stop(ctx context.Context) error {
	return r.stop.Stop(ctx, func() error {
		r.lifecycle.Lock()
		defer r.lifecycle.Unlock()
		// The first caller's deadline bounds its wait, not the shutdown: each component bounds
		// its own (drain timeouts), and a caller that stops waiting leaves it running.
		return r.stopAll(context.WithoutCancel(ctx))
	})
}

// stopAll stops the running components, last first; r.lifecycle is held.
func (r *Runner) stopAll(ctx context.Context) error {
	r.mu.Lock()
	for i, st := range r.states {
		if st == notStarted {
			r.states[i] = stopped // and never started
		}
	}
	r.mu.Unlock()
	var errs []error
	for i := len(r.components) - 1; i >= 0; i-- {
		c := r.components[i]
		r.mu.Lock()
		st := r.states[i]
		if st == running {
			r.states[i] = stopping
		}
		r.mu.Unlock()
		if st != running {
			continue
		}
		t0 := time.Now()
		if err := c.Stop(ctx); err != nil {
			r.log.Error("stop component", "component", c.Name(), "err", err)
			errs = append(errs, fmt.Errorf("stop %s: %w", c.Name(), err))
		} else {
			r.log.Debug("component stopped", "component", c.Name(), "took", time.Since(t0).Round(time.Millisecond))
		}
		r.mu.Lock()
		r.states[i] = stopped
		r.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Status reports every component's readiness, in list order. A running component answers for
// itself (its Ready); the others are not ready, and the reason is where they are: not
// started, starting, stopping or stopped.
func (r *Runner) Status() []Status {
	r.mu.Lock()
	states := append([]state(nil), r.states...)
	r.mu.Unlock()
	out := make([]Status, len(r.components))
	for i, c := range r.components {
		out[i] = Status{Name: c.Name()}
		if states[i] == running {
			out[i].Err = c.Ready()
		} else {
			out[i].Err = errors.New(states[i].String())
		}
	}
	return out
}

// Ready is nil when every component is running and ready; otherwise it names the first that
// is not and says why ("controllers: project default: configuration not applied yet").
func (r *Runner) Ready() error {
	for _, s := range r.Status() {
		if s.Err != nil {
			return fmt.Errorf("%s: %w", s.Name, s.Err)
		}
	}
	return nil
}

// Stopper makes a component's Stop idempotent and bounded by its caller's deadline: the
// shutdown runs once, in its own goroutine, and every Stop call waits for it or for its own
// ctx, whichever comes first. The zero value is ready to use.
type Stopper struct {
	called atomic.Bool
	once   sync.Once
	done   chan struct{}
	err    error
}

// Stop runs shutdown the first time it is called and waits until shutdown has returned (its
// error) or ctx ends (ctx's error; shutdown goes on).
func (s *Stopper) Stop(ctx context.Context, shutdown func() error) error {
	s.called.Store(true)
	s.once.Do(func() {
		s.done = make(chan struct{})
		go func() {
			defer close(s.done)
			s.err = shutdown()
		}()
	})
	select {
	case <-s.done:
		return s.err
	default:
	}
	select {
	case <-s.done:
		return s.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stopping reports whether Stop has been called (the shutdown may still be under way), for a
// component's Ready to say "stopped" rather than consult what it is taking down.
func (s *Stopper) Stopping() bool { return s.called.Load() }
