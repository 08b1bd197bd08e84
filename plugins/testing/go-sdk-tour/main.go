// sdk-tour: a test fixture that calls every function of the Go SDK and
// reports what it saw through the actions it enqueues, so that a replay
// shows the SDK's whole surface. Its Python and JavaScript twins
// (plugins/testing/python-sdk-tour, js-sdk-tour) do the same and must
// produce the same actions.
package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	informant "github.com/informant-dev/informant/guest-sdk/go"
	"github.com/informant-dev/informant/guest-sdk/go/action"
	"github.com/informant-dev/informant/guest-sdk/go/cache"
	"github.com/informant-dev/informant/guest-sdk/go/log"
	"github.com/informant-dev/informant/guest-sdk/go/state"
)

type settings struct {
	Prefix string `json:"prefix"`
	// A hostile mode, for the sandbox tests: "spin", "hog" or "panic".
	Mode string `json:"mode"`
}

type tour struct {
	settings settings
}

// codeOf is the error code a host call fails with, or "ok".
func codeOf(err error) string {
	var e *informant.Error
	if errors.As(err, &e) {
		return e.Code.String()
	}
	if err != nil {
		return "not an informant.Error: " + err.Error()
	}
	return "ok"
}

func (*tour) Describe() *informant.Manifest {
	return informant.NewManifest("sdk-tour", "1.2.3").
		Subscribe(informant.NewSubscription("v1", "ConfigMap").Namespace("tour").LabelSelector("tour").
			Events(informant.Added, informant.Modified, informant.Deleted).OldObject().ResyncSeconds(30)).
		Subscribe(informant.NewSubscription("v1", "Namespace").FieldSelector("metadata.name=tour").
			Events(informant.Added).LatestState().Fields("metadata.labels")).
		Index("by-app", "v1", "ConfigMap", "metadata.labels.app").
		Reads("v1", "Secret").
		Writes("v1", "ConfigMap", informant.Apply, informant.Create, informant.Patch, informant.PatchStatus, informant.Delete).
		Events().
		Memory(48).
		Deadline(100)
}

func (t *tour) Init(s informant.Settings) error {
	t.settings = settings{Prefix: "seen"}
	return s.Decode(&t.settings)
}

func names(objects []*informant.Object) string {
	out := make([]string, len(objects))
	for i, o := range objects {
		out[i] = o.Name()
	}
	return strings.Join(out, ",")
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// stateTour calls every function of the store and says what it saw, as text.
func stateTour(name, eventType string) map[string]string {
	seenBefore := must(state.Exists("last/" + name))
	must(0, state.Set("last/"+name, map[string]string{"type": eventType}))
	var before int64
	version, existed := must2(state.GetVersioned("calls", &before))
	calls := must(state.Increment("calls", 1))
	must(0, state.Set("short", []int{1, 2}, state.TTL(60*time.Second)))
	must(0, state.SetMany(map[string]any{"a/1": 1, "a/2": map[string]int{"two": 2}}))
	must(0, state.DeleteMany("a/1"))
	must(0, state.SetBytes("raw", []byte{0x00, 0xff}))
	var last struct {
		Type string `json:"type"`
	}
	must(state.Get("last/"+name, &last))
	versioned := "none"
	if existed {
		versioned = fmt.Sprint(before+1 == calls && version != "")
	}
	var many []string
	for _, v := range must(state.GetMany("calls", "missing")) {
		if v == nil {
			many = append(many, "none")
		} else {
			many = append(many, string(v))
		}
	}
	fallback := "fallback"
	must(state.Get("missing", &fallback))
	raw, _ := must2(state.GetBytes("raw"))
	deleted := "None"
	var one int
	if must(state.Get("a/1", &one)) {
		deleted = fmt.Sprint(one)
	}
	_, _, bad := state.GetBytes("")
	_, notInteger := state.Increment("short", 1)
	return map[string]string{
		"state-calls":       fmt.Sprint(calls),
		"state-seen-before": fmt.Sprint(seenBefore),
		"state-last":        last.Type,
		"state-versioned":   versioned,
		"state-cas-stale":   fmt.Sprint(must(state.CompareAndSwap("calls", "not-a-version", 0))),
		"state-cas-absent":  fmt.Sprint(must(state.CompareAndSwap("once/"+name, "", name))),
		"state-many":        strings.Join(many, ","),
		"state-keys":        strings.Join(must(state.Keys("a/")), ","),
		"state-default":     fallback,
		"state-raw":         fmt.Sprintf("%x", raw),
		"state-deleted":     deleted,
		"state-big":         codeOf(state.SetBytes("big", make([]byte, 1<<20))),
		"state-bad-key":     codeOf(bad),
		"state-not-integer": codeOf(notInteger),
	}
}

func must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(err)
	}
	return a, b
}

func (t *tour) Handle(event *informant.Event) error {
	switch t.settings.Mode {
	case "spin":
		for {
		}
	case "hog":
		// Steps larger than the cap: the first one is refused without
		// touching a page, so the test is about the cap, not about how fast
		// a busy machine zeroes memory before the deadline.
		var chunks [][]byte
		for {
			chunks = append(chunks, make([]byte, 64<<20))
		}
	}
	obj := event.Object()
	if t.settings.Mode == "panic" {
		panic("panicking on purpose for " + obj.APIVersion() + "/" + obj.Ref().String())
	}
	if event.Type == informant.Deleted {
		return action.Delete(obj, action.WithUID(obj.UID()), action.WithResourceVersion(obj.ResourceVersion()))
	}
	if obj.Kind() == "Namespace" {
		return action.Event(obj, "Toured", "namespace "+obj.Name(), action.Action("Look"), action.Warning())
	}
	ns := must(cache.Get("v1", "Namespace", "", obj.Namespace()))
	app, hasApp := obj.Label("app")
	old := "none"
	if event.OldObject() != nil {
		old = event.OldObject().ResourceVersion()
	}
	firstItem, _ := obj.GetString("data.items")
	missing := obj.Get("spec.nothing.0")
	if missing == nil {
		missing = "default"
	}
	team := "no namespace"
	if ns != nil {
		team, _ = ns.Label("team")
	}
	annotation, ok := obj.Annotation("note")
	if !ok {
		annotation = "none"
	}
	var keys []string
	for _, r := range must(cache.ListKeys("v1", "ConfigMap", cache.Selector("app"))) {
		keys = append(keys, r.String())
	}
	byIndex := ""
	if hasApp {
		byIndex = names(must(cache.ByIndex("by-app", app)))
	}
	if !hasApp {
		app = "none"
	}
	var byIndexKeys []string
	for _, r := range must(cache.ByIndexKeys("by-app", app)) {
		byIndexKeys = append(byIndexKeys, r.Name)
	}
	secret := must(cache.Get("v1", "Secret", "tour", "token"))
	secretType, _ := secret.GetString("type")
	_, forbiddenRead := cache.List("apps/v1", "Deployment")
	_, unknownIndex := cache.ByIndex("nope", "x")
	forbiddenWrite := action.Create(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "p", "namespace": "tour"}})
	report := map[string]string{
		"type":            event.Type.String(),
		"initial":         fmt.Sprint(event.Initial),
		"old":             old,
		"ref":             obj.Ref().String(),
		"first-item":      strings.Split(firstItem, ",")[0],
		"missing-path":    fmt.Sprint(missing),
		"namespace-team":  team,
		"annotation":      annotation,
		"list":            names(must(cache.List("v1", "ConfigMap", cache.InNamespace("tour"), cache.Selector("tour")))),
		"list-keys":       strings.Join(keys, ","),
		"by-index":        byIndex,
		"by-index-keys":   strings.Join(byIndexKeys, ","),
		"index-values":    strings.Join(must(cache.IndexValues("by-app")), ","),
		"secret":          secretType,
		"forbidden-read":  codeOf(forbiddenRead),
		"unknown-index":   codeOf(unknownIndex),
		"forbidden-write": codeOf(forbiddenWrite),
	}
	for k, v := range stateTour(obj.Name(), event.Type.String()) {
		report[k] = v
	}
	log.Infof("%s: %v", obj.Ref(), report)
	log.Debug("debug line")
	steps := []error{
		action.Apply(map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": t.settings.Prefix + "-" + obj.Name(), "namespace": "tour"},
			"data":     report}, action.Force()),
		action.Create(map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": "created-" + obj.Name(), "namespace": "tour"}}),
		action.MergePatch(obj, map[string]any{"metadata": map[string]any{"labels": map[string]string{"toured": "yes"}}}),
		action.JSONPatch(informant.ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "tour", Name: obj.Name()},
			[]map[string]any{{"op": "add", "path": "/metadata/annotations", "value": map[string]string{"toured": "yes"}}}),
		action.PatchStatus(obj, map[string]any{"status": map[string]bool{"toured": true}}),
		action.RequeueAfter(obj, 1500*time.Millisecond),
	}
	if err := errors.Join(steps...); err != nil {
		return err
	}
	if obj.Name() == "fail" {
		return informant.Errorf(informant.LimitExceeded, "asked to fail")
	}
	return nil
}

func init() { informant.Export(&tour{}) }

func main() {}
