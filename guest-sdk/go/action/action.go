// Package action asks the host to change the cluster.
//
// Each function enqueues at once and returns the host's refusal as an
// *informant.Error (Forbidden when the manifest does not grant it,
// LimitExceeded past the per-call cap). Enqueued actions are committed only
// if Handle returns nil; the host then deduplicates, rate-limits and
// retries them. Objects and patches are anything encoding/json marshals (a
// map, a struct), or JSON already encoded (a string, []byte,
// json.RawMessage, or an *informant.Object).
package action

import (
	"encoding/json"
	"time"

	informant "github.com/informant-dev/informant/guest-sdk/go"
	"github.com/informant-dev/informant/guest-sdk/go/internal/wit"
)

// Target names the object an action is about: an *informant.Object or an
// informant.ObjectRef.
type Target interface {
	Ref() informant.ObjectRef
}

func encode(v any) (string, error) {
	switch t := v.(type) {
	case string:
		return t, nil
	case []byte:
		return string(t), nil
	case json.RawMessage:
		return string(t), nil
	case *informant.Object:
		return t.Raw(), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", &informant.Error{Code: informant.Invalid, Message: "encoding the action: " + err.Error()}
	}
	return string(b), nil
}

func enqueue(a wit.Action) error {
	r := wit.ActionsEnqueue(a)
	if r.IsErr {
		return informant.FromWit(r.Err)
	}
	return nil
}

func patch(target Target, p any) (wit.PatchAction, error) {
	text, err := encode(p)
	return wit.PatchAction{Target: target.Ref().ToWit(), Patch: text}, err
}

// ApplyOption changes an Apply.
type ApplyOption func(*wit.ApplyAction)

// Force takes ownership of fields another manager owns instead of failing
// with a conflict.
func Force() ApplyOption { return func(a *wit.ApplyAction) { a.Force = true } }

// Apply is a server-side apply of obj (apiVersion, kind, metadata.name,
// metadata.namespace and only the fields the plugin owns), with field
// manager informant.<plugin name>.
func Apply(obj any, opts ...ApplyOption) error {
	text, err := encode(obj)
	if err != nil {
		return err
	}
	a := wit.ApplyAction{Object: text}
	for _, o := range opts {
		o(&a)
	}
	return enqueue(wit.ActionApply(a))
}

// Create creates obj; an existing object is left alone.
func Create(obj any) error {
	text, err := encode(obj)
	if err != nil {
		return err
	}
	return enqueue(wit.ActionCreate(text))
}

// MergePatch is a JSON merge patch (RFC 7386) of target.
func MergePatch(target Target, mergePatch any) error {
	p, err := patch(target, mergePatch)
	if err != nil {
		return err
	}
	return enqueue(wit.ActionMergePatch(p))
}

// JSONPatch is a JSON patch (RFC 6902) of target: a list of operations.
func JSONPatch(target Target, operations any) error {
	p, err := patch(target, operations)
	if err != nil {
		return err
	}
	return enqueue(wit.ActionJsonPatch(p))
}

// PatchStatus is a JSON merge patch of target's status subresource.
func PatchStatus(target Target, mergePatch any) error {
	p, err := patch(target, mergePatch)
	if err != nil {
		return err
	}
	return enqueue(wit.ActionPatchStatus(p))
}

// DeleteOption adds a precondition to a Delete.
type DeleteOption func(*wit.DeleteAction)

// WithUID deletes only if the object still has this uid.
func WithUID(uid string) DeleteOption {
	return func(d *wit.DeleteAction) { d.Uid = wit.Some(uid) }
}

// WithResourceVersion deletes only if the object still has this resourceVersion.
func WithResourceVersion(resourceVersion string) DeleteOption {
	return func(d *wit.DeleteAction) { d.ResourceVersion = wit.Some(resourceVersion) }
}

// Delete deletes target (a delete that finds nothing is done).
func Delete(target Target, opts ...DeleteOption) error {
	d := wit.DeleteAction{Target: target.Ref().ToWit()}
	for _, o := range opts {
		o(&d)
	}
	return enqueue(wit.ActionDelete(d))
}

// EventOption changes an Event.
type EventOption func(*wit.EventAction)

// Warning makes the Event a Warning (Normal otherwise).
func Warning() EventOption {
	return func(e *wit.EventAction) { e.Severity = wit.EventSeverityWarning }
}

// Action names what was done or failed, in CamelCase ("Patch"); the reason by default.
func Action(action string) EventOption {
	return func(e *wit.EventAction) { e.Action = action }
}

// Event records a Kubernetes Event (events.k8s.io/v1) about regarding;
// the manifest needs Events(). reason is short CamelCase ("LabelAdded").
func Event(regarding Target, reason, message string, opts ...EventOption) error {
	e := wit.EventAction{Regarding: regarding.Ref().ToWit(), Severity: wit.EventSeverityNormal, Reason: reason, Message: message}
	for _, o := range opts {
		o(&e)
	}
	if e.Action == "" {
		e.Action = reason
	}
	return enqueue(wit.ActionEmitEvent(e))
}

// RequeueAfter delivers target (of one of the plugin's subscriptions) to
// the plugin again, as a Resync event, after delay.
func RequeueAfter(target Target, delay time.Duration) error {
	return enqueue(wit.ActionRequeueAfter(wit.RequeueAction{Target: target.Ref().ToWit(), DelayMs: uint64(delay.Milliseconds())}))
}
