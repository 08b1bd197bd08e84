// Package informant writes Informant plugins in Go.
//
// A plugin is a Go package main whose init function exports one value that
// implements [Plugin]:
//
//	type TeamLabel struct{}
//
//	func (TeamLabel) Describe() *informant.Manifest {
//		return informant.NewManifest("team-label", "0.1.0").
//			Subscribe(informant.NewSubscription("v1", "ConfigMap").Events(informant.Added, informant.Modified).LatestState()).
//			Writes("v1", "ConfigMap", informant.Patch)
//	}
//
//	func (TeamLabel) Handle(event *informant.Event) error {
//		cm := event.Object()
//		if _, ok := cm.Label("team"); !ok {
//			return action.MergePatch(cm, map[string]any{"metadata": map[string]any{"labels": map[string]string{"team": "unowned"}}})
//		}
//		return nil
//	}
//
//	func init() { informant.Export(TeamLabel{}) }
//
//	func main() {}
//
// `informant-go build DIR` turns the package into a WebAssembly component
// against the contract (wit/plugin.wit). Actions are committed only if
// Handle returns nil; returning an error (an [*Error] chooses its code) or
// panicking discards them. The packages cache, action and log reach the
// host; outside a built component they panic, saying so, so the rest of a
// plugin can be unit-tested natively.
package informant

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/informant-dev/informant/guest-sdk/go/internal/wit"
)

// Version is this SDK's version. Its major.minor are those of the contract
// it speaks (informant:plugin@0.2); published, the module is tagged
// guest-sdk/go/v<Version>, and `informant new` requires that version.
const Version = "0.3.0"

// Plugin is what a plugin implements.
//
// Describe runs on a fresh instance, before anything else, and must not
// depend on settings. Handle receives each event. The host runs several
// instances at once (one per core by default), each with its own memory,
// and replaces them after a trap, a reload or a call that grew their memory:
// fields of the plugin and package variables are a per-instance cache, not
// a store. [Manifest.Instances](1) runs every call on one instance, in
// order.
type Plugin interface {
	Describe() *Manifest
	Handle(event *Event) error
}

// Initializer is implemented by plugins that read settings: Init runs on
// every fresh instance before its first Handle. Return an error (an
// [*Error] with code [Invalid], say) to refuse the settings.
type Initializer interface {
	Init(settings Settings) error
}

var exported Plugin

// Export makes p the plugin this component is. Call it from an init
// function of package main.
func Export(p Plugin) {
	exported = p
}

func init() {
	wit.Exports.Describe = describe
	wit.Exports.Init = initialize
	wit.Exports.Handle = handle
}

func plugin() Plugin {
	if exported == nil {
		panic("informant: this plugin never called informant.Export(...) from an init function")
	}
	return exported
}

func describe() wit.Manifest {
	m := plugin().Describe()
	if m == nil {
		panic("informant: Describe returned a nil manifest")
	}
	return m.toWit()
}

func initialize(settings string) wit.Result[wit.Unit, wit.Error] {
	return result(func() error {
		if i, ok := plugin().(Initializer); ok {
			return i.Init(Settings{raw: settings})
		}
		return nil
	})
}

func handle(e wit.Event) wit.Result[wit.Unit, wit.Error] {
	return result(func() error {
		return plugin().Handle(eventFromWit(e))
	})
}

// result runs f, turning its error or its panic into the contract's error.
func result(f func() error) (r wit.Result[wit.Unit, wit.Error]) {
	defer func() {
		if p := recover(); p != nil {
			r = wit.Result[wit.Unit, wit.Error]{IsErr: true, Err: (&Error{Code: Failed, Message: fmt.Sprintf("panic: %v%s", p, panicSite())}).toWit()}
		}
	}()
	if err := f(); err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Code: Failed, Message: err.Error()}
		}
		return wit.Result[wit.Unit, wit.Error]{IsErr: true, Err: e.toWit()}
	}
	return wit.Result[wit.Unit, wit.Error]{}
}

// panicSite is where the panic happened: the first frame outside the Go
// runtime and this file.
func panicSite() string {
	pcs := make([]uintptr, 32)
	n := runtime.Callers(3, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	for {
		frame, more := frames.Next()
		if !strings.HasPrefix(frame.Function, "runtime.") && !strings.HasSuffix(frame.File, "/informant.go") {
			return fmt.Sprintf(" at %s:%d", frame.File, frame.Line)
		}
		if !more {
			return ""
		}
	}
}
