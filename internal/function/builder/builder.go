// Package builder turns a project's EdgeFunctions into EdgeFunctionRevisions: for each
// function whose spec.template has no revision yet it creates one, named
// <function>-<hash of the template>, fetches and builds its code into the project's artifact
// store, and keeps the statuses (the revision's phase and build messages, the function's
// live and latest revisions and its Ready and Built conditions). A failed build never
// replaces the live revision; spec.liveRevision pins one; revisionHistoryLimit prunes the
// oldest, never the live or the latest one.
//
// It runs inside the project controller (a controller.Reconciler): called after every change
// with the project's objects, it writes through the project's own API, so what it does is
// what any client could see and do.
package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"

	extv1a2 "apoxy.dev/apoxy/api/extensions/v1alpha2"
	"apoxy.dev/apoxy/internal/controller"
	"apoxy.dev/apoxy/internal/function/artifact"
	"apoxy.dev/apoxy/internal/function/source"
	"apoxy.dev/apoxy/internal/resource"
	"apoxy.dev/apoxy/internal/status"
)

// LabelFunction names a revision's EdgeFunction.
const LabelFunction = "extensions.apoxy.dev/edgefunction"

// AnnotationNumber numbers a function's revisions in the order they were made (1, 2, ...):
// creation timestamps have only second resolution.
const AnnotationNumber = "extensions.apoxy.dev/revision-number"

// Number is a revision's AnnotationNumber (0 when absent).
func Number(r *extv1a2.EdgeFunctionRevision) int {
	n, _ := strconv.Atoi(r.Annotations[AnnotationNumber])
	return n
}

// NewestFirst orders revisions newest first: by number, then creation time, then name.
func NewestFirst(a, b *extv1a2.EdgeFunctionRevision) int {
	if c := Number(b) - Number(a); c != 0 {
		return c
	}
	if c := b.CreationTimestamp.Compare(a.CreationTimestamp.Time); c != 0 {
		return c
	}
	return strings.Compare(b.Name, a.Name)
}

// reasonFetchFailed is the Built condition's reason when a revision's source could not be
// fetched for a reason that may pass; the builder tries again (retryDelay).
const reasonFetchFailed = "FetchFailed"

// DefaultRevisionHistoryLimit is how many revisions are kept besides the live and latest.
const DefaultRevisionHistoryLimit = 10

var (
	functionsGVR = extv1a2.SchemeGroupVersion.WithResource("edgefunctions")
	revisionsGVR = extv1a2.SchemeGroupVersion.WithResource("edgefunctionrevisions")
)

// Options configure one project's builder.
type Options struct {
	Project string
	// Store holds the project's built artifacts.
	Store *artifact.Store
	// Compile builds a revision's code, reading credentials from secrets (default:
	// (&Compiler{}).Compile, which fetches from public addresses only).
	Compile func(ctx context.Context, spec *extv1a2.EdgeFunctionRevisionSpec, secrets Secrets) (*Output, error)
	// Slots bound concurrent builds across every project of the process (a channel used as
	// a semaphore; nil: one build at a time in this builder).
	Slots chan struct{}
	// BuildTimeout bounds one build (default 5 minutes).
	BuildTimeout time.Duration
	Logger       *slog.Logger
	Now          func() time.Time
}

// Output is a built revision.
type Output struct {
	Code []byte
	// Runtime is "js" or "wasm".
	Runtime string
	// Source is what the source resolved to (a commit, an npm version and integrity, an OCI
	// digest), "" for inline code.
	Source string
}

// Builder is one project's EdgeFunction builder.
type Builder struct {
	opts Options
	log  *slog.Logger
	// ctx outlives each Reconcile: builds run on after the call that started them.
	ctx context.Context

	mu sync.Mutex
	// running are the revisions (namespace/name) being built by this process; finished those
	// it built whose final status the watch has not shown yet (so a pass on the stale copy
	// does not build them again).
	running  map[status.Key]bool
	finished map[status.Key]bool
	// pruned remembers the artifacts digest set last pruned against, to skip unchanged sets.
	pruned string
	// secrets are the project's Secrets as of the last pass (credentialsRef).
	secrets map[status.Key]map[string][]byte
	// retries are the revisions whose source could not be fetched for a reason that may pass
	// (a network failure, a server's 5xx or 429), with their next attempt.
	retries map[status.Key]retry
}

// retry is a revision's schedule of fetch retries.
type retry struct {
	attempts int
	at       time.Time
}

// Fetch retries back off from retryBase, doubling, to retryMax, and go on while the revision
// is its function's latest: a registry or Git server that is down for an hour is used once it
// is back, without a change to the function.
const (
	retryBase = 2 * time.Second
	retryMax  = 5 * time.Minute
)

// retryDelay is the wait before attempt n+1 after n failed ones.
func retryDelay(n int) time.Duration {
	d := retryBase
	for i := 1; i < n && d < retryMax; i++ {
		d *= 2
	}
	return min(d, retryMax)
}

// transient reports whether a failed build may succeed unchanged later: its source was
// unreachable, and not because it is at an address the fetcher may not reach.
func transient(err error) bool {
	return errors.Is(err, source.ErrUnreachable) && !errors.Is(err, errPrivateAddress)
}

// New makes a builder whose builds run until ctx ends.
func New(ctx context.Context, opts Options) *Builder {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Slots == nil {
		opts.Slots = make(chan struct{}, 1)
	}
	if opts.BuildTimeout == 0 {
		opts.BuildTimeout = 5 * time.Minute
	}
	if opts.Compile == nil {
		opts.Compile = (&Compiler{}).Compile
	}
	return &Builder{opts: opts, log: opts.Logger.With("project", opts.Project, "component", "edgefunction-builder"), ctx: ctx, running: map[status.Key]bool{}, finished: map[status.Key]bool{}, retries: map[status.Key]retry{}}
}

// RevisionName is the revision a template makes: the function's name and the first 10 hex
// digits of the template's hash (the name stays within 253 characters).
func RevisionName(function string, t *extv1a2.EdgeFunctionRevisionSpec) string {
	b, _ := json.Marshal(t)
	sum := sha256.Sum256(b)
	if len(function) > 242 {
		function = function[:242]
	}
	return function + "-" + hex.EncodeToString(sum[:])[:10]
}

// Reconcile creates the revisions the project's functions need, starts their builds, writes
// the functions' statuses and prunes. kick asks the controller for another pass.
func (b *Builder) Reconcile(ctx context.Context, set *resource.Set, api dynamic.Interface, kick func()) error {
	byFunction := map[status.Key][]*extv1a2.EdgeFunctionRevision{}
	functions := map[status.Key]bool{}
	for _, ef := range set.EdgeFunctions {
		functions[status.KeyOf(ef.Namespace, ef.Name)] = true
	}
	var errs []error
	for _, r := range set.EdgeFunctionRevisions {
		fn := r.Labels[LabelFunction]
		if fn == "" {
			continue // not made by the builder
		}
		key := status.KeyOf(r.Namespace, fn)
		if !functions[key] {
			// Its function was deleted: so is it.
			errs = append(errs, b.delete(ctx, api, r))
			continue
		}
		byFunction[key] = append(byFunction[key], r)
	}
	secrets := map[status.Key]map[string][]byte{}
	for _, s := range set.Secrets {
		secrets[status.KeyOf(s.Namespace, s.Name)] = s.Data
	}
	b.mu.Lock()
	b.secrets = secrets
	b.mu.Unlock()
	for _, ef := range set.EdgeFunctions {
		errs = append(errs, b.reconcileFunction(ctx, api, ef, byFunction[status.KeyOf(ef.Namespace, ef.Name)], kick))
	}
	b.pruneArtifacts(set)
	return errors.Join(errs...)
}

func (b *Builder) reconcileFunction(ctx context.Context, api dynamic.Interface, ef *extv1a2.EdgeFunction, revs []*extv1a2.EdgeFunctionRevision, kick func()) error {
	latest := RevisionName(ef.Name, &ef.Spec.Template)
	var latestRev *extv1a2.EdgeFunctionRevision
	for _, r := range revs {
		if r.Name == latest {
			latestRev = r
		}
	}
	if latestRev == nil {
		n := 0
		for _, r := range revs {
			n = max(n, Number(r))
		}
		r, err := b.create(ctx, api, ef, latest, n+1)
		if err != nil {
			return err
		}
		latestRev = r
		revs = append(revs, r)
	}
	for _, r := range revs {
		switch r.Status.Phase {
		case "", extv1a2.RevisionPending, extv1a2.RevisionBuilding:
			if !b.wasFinished(r) {
				b.start(api, r, kick)
			}
		case extv1a2.RevisionReady:
			b.forgetFinished(r)
			if r.Status.Artifact == nil || !b.opts.Store.Has(r.Status.Artifact.Digest) {
				b.start(api, r, kick) // the artifact is gone (a wiped data directory): build again
			}
		case extv1a2.RevisionFailed:
			b.forgetFinished(r)
			if c := findCondition(r.Status.Conditions, "Built"); r.Name == latest && c != nil && c.Reason == reasonFetchFailed && b.retryDue(r) {
				b.start(api, r, kick)
			}
		}
	}
	next := b.functionStatus(ef, revs, latestRev)
	var err error
	if !apiequality.Semantic.DeepEqual(&ef.Status, next) {
		err = controller.WriteStatus(ctx, api, functionsGVR, "EdgeFunction", &ef.ObjectMeta, next, "apoxy-builder")
	}
	return errors.Join(err, b.prune(ctx, api, ef, revs, next.LiveRevision, latest))
}

// functionStatus computes a function's status from its revisions.
func (b *Builder) functionStatus(ef *extv1a2.EdgeFunction, revs []*extv1a2.EdgeFunctionRevision, latest *extv1a2.EdgeFunctionRevision) *extv1a2.EdgeFunctionStatus {
	now := b.opts.Now()
	st := ef.Status.DeepCopy()
	st.ObservedGeneration = ef.Generation
	st.LatestRevision = latest.Name
	ready := func(name string) bool {
		for _, r := range revs {
			if r.Name == name {
				return r.Status.Phase == extv1a2.RevisionReady && r.Status.Artifact != nil
			}
		}
		return false
	}
	live, why := "", ""
	switch pin := ef.Spec.LiveRevision; {
	case pin != "" && ready(pin):
		live, why = pin, fmt.Sprintf("revision %s serves (pinned by spec.liveRevision)", pin)
	case pin != "":
		live = st.LiveRevision
		why = fmt.Sprintf("spec.liveRevision %s is not a built revision of this function", pin)
	case ready(latest.Name):
		live, why = latest.Name, fmt.Sprintf("revision %s serves", latest.Name)
	default:
		live = st.LiveRevision // a failed or unfinished build never replaces the live revision
	}
	if live != "" && !ready(live) {
		live = ""
	}
	st.LiveRevision = live
	switch {
	case live != "" && ef.Spec.LiveRevision != "" && live != ef.Spec.LiveRevision:
		status.Set(&st.Conditions, status.Condition("Ready", true, "PinNotReady", why+"; "+live+" keeps serving", ef.Generation, now))
	case live != "" && why == "":
		status.Set(&st.Conditions, status.Condition("Ready", true, "RevisionReady", fmt.Sprintf("revision %s serves while %s is not built", live, latest.Name), ef.Generation, now))
	case live != "":
		status.Set(&st.Conditions, status.Condition("Ready", true, "RevisionReady", why, ef.Generation, now))
	case why != "":
		status.Set(&st.Conditions, status.Condition("Ready", false, "PinNotReady", why, ef.Generation, now))
	default:
		status.Set(&st.Conditions, status.Condition("Ready", false, "NoRevision", "no revision has built yet", ef.Generation, now))
	}
	switch latest.Status.Phase {
	case extv1a2.RevisionReady:
		status.Set(&st.Conditions, status.Condition("Built", true, "Succeeded", "revision "+latest.Name+" built", ef.Generation, now))
	case extv1a2.RevisionFailed:
		msg := "revision " + latest.Name + " failed to build"
		if c := findCondition(latest.Status.Conditions, "Built"); c != nil && c.Message != "" {
			msg += ": " + c.Message
		}
		reason := "BuildFailed"
		if c := findCondition(latest.Status.Conditions, "Built"); c != nil && c.Reason == reasonFetchFailed {
			reason = reasonFetchFailed
		}
		status.Set(&st.Conditions, status.Condition("Built", false, reason, msg, ef.Generation, now))
	default:
		c := status.Condition("Built", false, "Building", "revision "+latest.Name+" is building", ef.Generation, now)
		c.Status = metav1.ConditionUnknown
		status.Set(&st.Conditions, c)
	}
	return st
}

func findCondition(cs []metav1.Condition, typ string) *metav1.Condition {
	for i := range cs {
		if cs[i].Type == typ {
			return &cs[i]
		}
	}
	return nil
}

// create makes the revision of ef's current template.
func (b *Builder) create(ctx context.Context, api dynamic.Interface, ef *extv1a2.EdgeFunction, name string, number int) (*extv1a2.EdgeFunctionRevision, error) {
	yes := true
	r := &extv1a2.EdgeFunctionRevision{
		TypeMeta: metav1.TypeMeta{APIVersion: extv1a2.SchemeGroupVersion.String(), Kind: "EdgeFunctionRevision"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ef.Namespace, Labels: map[string]string{LabelFunction: ef.Name},
			Annotations:     map[string]string{AnnotationNumber: strconv.Itoa(number)},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: extv1a2.SchemeGroupVersion.String(), Kind: "EdgeFunction", Name: ef.Name, UID: ef.UID, Controller: &yes}}},
		Spec: *ef.Spec.Template.DeepCopy(),
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(r)
	if err != nil {
		return nil, err
	}
	out, err := api.Resource(revisionsGVR).Namespace(ef.Namespace).Create(ctx, &unstructured.Unstructured{Object: u}, metav1.CreateOptions{FieldManager: "apoxy-builder"})
	created := err == nil
	if apierrors.IsAlreadyExists(err) {
		// The watch has not shown it yet.
		out, err = api.Resource(revisionsGVR).Namespace(ef.Namespace).Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("create revision %s: %w", name, err)
	}
	rev := &extv1a2.EdgeFunctionRevision{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(out.Object, rev); err != nil {
		return nil, err
	}
	if created {
		b.log.Info("edge function revision created", "function", ef.Name, "revision", name)
	}
	return rev, nil
}

func (b *Builder) delete(ctx context.Context, api dynamic.Interface, r *extv1a2.EdgeFunctionRevision) error {
	err := api.Resource(revisionsGVR).Namespace(r.Namespace).Delete(ctx, r.Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete revision %s: %w", r.Name, err)
	}
	b.mu.Lock()
	delete(b.retries, status.KeyOf(r.Namespace, r.Name))
	b.mu.Unlock()
	return nil
}

// prune deletes the oldest revisions beyond the function's history limit; the live and the
// latest revision are never pruned, nor one being built.
func (b *Builder) prune(ctx context.Context, api dynamic.Interface, ef *extv1a2.EdgeFunction, revs []*extv1a2.EdgeFunctionRevision, live, latest string) error {
	limit := DefaultRevisionHistoryLimit
	if ef.Spec.RevisionHistoryLimit != nil {
		limit = int(*ef.Spec.RevisionHistoryLimit)
	}
	var old []*extv1a2.EdgeFunctionRevision
	for _, r := range revs {
		if r.Name != live && r.Name != latest && r.Name != ef.Spec.LiveRevision && !b.isRunning(r) {
			old = append(old, r)
		}
	}
	if len(old) <= limit {
		return nil
	}
	slices.SortFunc(old, NewestFirst)
	var errs []error
	for _, r := range old[limit:] {
		b.log.Info("edge function revision pruned", "function", ef.Name, "revision", r.Name)
		errs = append(errs, b.delete(ctx, api, r))
	}
	return errors.Join(errs...)
}

// pruneArtifacts removes the artifacts no revision of the project names.
func (b *Builder) pruneArtifacts(set *resource.Set) {
	keep := map[string]bool{}
	var names []string
	for _, r := range set.EdgeFunctionRevisions {
		if a := r.Status.Artifact; a != nil {
			keep[a.Digest] = true
			names = append(names, a.Digest)
		}
	}
	slices.Sort(names)
	sig := strings.Join(names, ",")
	b.mu.Lock()
	busy := len(b.running) > 0
	same := sig == b.pruned
	if !busy {
		b.pruned = sig
	}
	b.mu.Unlock()
	if busy || same {
		return // a build in flight may have stored an artifact its revision does not name yet
	}
	if n, err := b.opts.Store.Remove(func(d string) bool { return keep[d] }); err != nil {
		b.log.Warn("pruning artifacts", "err", err)
	} else if n > 0 {
		b.log.Info("artifacts pruned", "count", n)
	}
}

func (b *Builder) wasFinished(r *extv1a2.EdgeFunctionRevision) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.finished[status.KeyOf(r.Namespace, r.Name)]
}

func (b *Builder) forgetFinished(r *extv1a2.EdgeFunctionRevision) {
	b.mu.Lock()
	delete(b.finished, status.KeyOf(r.Namespace, r.Name))
	b.mu.Unlock()
}

// retryDue reports whether a revision whose fetch failed transiently is due another attempt
// (also when this process has no schedule for it: it restarted since).
func (b *Builder) retryDue(r *extv1a2.EdgeFunctionRevision) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	rt, ok := b.retries[status.KeyOf(r.Namespace, r.Name)]
	return !ok || !b.opts.Now().Before(rt.at)
}

func (b *Builder) isRunning(r *extv1a2.EdgeFunctionRevision) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.running[status.KeyOf(r.Namespace, r.Name)]
}

// start builds r in the background unless this process builds it already.
func (b *Builder) start(api dynamic.Interface, r *extv1a2.EdgeFunctionRevision, kick func()) {
	key := status.KeyOf(r.Namespace, r.Name)
	b.mu.Lock()
	if b.running[key] {
		b.mu.Unlock()
		return
	}
	b.running[key] = true
	b.mu.Unlock()
	go func() {
		defer func() {
			b.mu.Lock()
			delete(b.running, key)
			b.mu.Unlock()
			kick()
		}()
		if b.run(api, r.DeepCopy(), kick) {
			b.mu.Lock()
			b.finished[key] = true
			b.mu.Unlock()
		}
	}()
}

// run builds one revision and records the outcome in its status; it reports whether it did.
func (b *Builder) run(api dynamic.Interface, r *extv1a2.EdgeFunctionRevision, kick func()) bool {
	ctx := b.ctx
	select {
	case b.opts.Slots <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	defer func() { <-b.opts.Slots }()
	now := b.opts.Now()
	st := &extv1a2.EdgeFunctionRevisionStatus{Phase: extv1a2.RevisionBuilding}
	c := status.Condition("Built", false, "Building", "fetching and building the code", r.Generation, now)
	c.Status = metav1.ConditionUnknown
	status.Set(&st.Conditions, c)
	if err := controller.WriteStatus(ctx, api, revisionsGVR, "EdgeFunctionRevision", &r.ObjectMeta, st, "apoxy-builder"); err != nil {
		b.log.Warn("revision status", "revision", r.Name, "err", err)
	}
	began := time.Now()
	bctx, cancel := context.WithTimeout(ctx, b.opts.BuildTimeout)
	out, err := b.opts.Compile(bctx, &r.Spec, func(name string) (map[string][]byte, bool) {
		b.mu.Lock()
		defer b.mu.Unlock()
		d, ok := b.secrets[status.KeyOf(r.Namespace, name)]
		return d, ok
	})
	cancel()
	if ctx.Err() != nil {
		return false // stopping: the next start builds it again
	}
	st = &extv1a2.EdgeFunctionRevisionStatus{}
	now = b.opts.Now()
	if err == nil {
		var digest string
		if digest, err = b.opts.Store.Put(out.Code); err == nil {
			st.Phase = extv1a2.RevisionReady
			st.Artifact = &extv1a2.FunctionArtifact{Digest: digest, Runtime: out.Runtime, Size: int64(len(out.Code))}
			st.Source = out.Source
			status.Set(&st.Conditions, status.Condition("Built", true, "Succeeded",
				fmt.Sprintf("built %s (%d bytes) in %s", out.Runtime, len(out.Code), time.Since(began).Round(time.Millisecond)), r.Generation, now))
		}
	}
	key := status.KeyOf(r.Namespace, r.Name)
	if err != nil {
		st.Phase = extv1a2.RevisionFailed
		reason, msg := "BuildFailed", err.Error()
		if transient(err) {
			b.mu.Lock()
			rt := b.retries[key]
			rt.attempts++
			delay := retryDelay(rt.attempts)
			rt.at = now.Add(delay)
			b.retries[key] = rt
			b.mu.Unlock()
			time.AfterFunc(delay, kick)
			reason = reasonFetchFailed
			msg = fmt.Sprintf("%s (attempt %d; retrying in %s)", truncate(msg, 3900), rt.attempts, delay)
		}
		status.Set(&st.Conditions, status.Condition("Built", false, reason, truncate(msg, 4096), r.Generation, now))
		b.log.Info("edge function build failed", "revision", r.Name, "err", err, "retry", reason == reasonFetchFailed)
	} else {
		b.mu.Lock()
		delete(b.retries, key)
		b.mu.Unlock()
		b.log.Info("edge function built", "revision", r.Name, "runtime", out.Runtime, "bytes", len(out.Code), "took", time.Since(began))
	}
	if err := controller.WriteStatus(ctx, api, revisionsGVR, "EdgeFunctionRevision", &r.ObjectMeta, st, "apoxy-builder"); err != nil {
		b.log.Warn("revision status", "revision", r.Name, "err", err)
		return false
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
