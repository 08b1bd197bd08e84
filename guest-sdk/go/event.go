package informant

import (
	"encoding/json"
	"strconv"
	"strings"
	"unsafe"

	"github.com/informant-dev/informant/guest-sdk/go/internal/wit"
)

// ObjectRef names one object. Namespace is empty for a cluster-scoped one.
type ObjectRef struct {
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
}

// Ref is the reference itself, so that an ObjectRef is an action target.
func (r ObjectRef) Ref() ObjectRef { return r }

// String is "ConfigMap shop/settings", or "Namespace shop" for a
// cluster-scoped object.
func (r ObjectRef) String() string {
	if r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// ToWit is the reference in the contract's terms. For the SDK's own packages.
func (r ObjectRef) ToWit() wit.ObjectRef {
	ns := wit.None[string]()
	if r.Namespace != "" {
		ns = wit.Some(r.Namespace)
	}
	return wit.ObjectRef{ApiVersion: r.APIVersion, Kind: r.Kind, Namespace: ns, Name: r.Name}
}

// RefFromWit is the contract's reference as an ObjectRef. For the SDK's own packages.
func RefFromWit(r wit.ObjectRef) ObjectRef {
	return ObjectRef{APIVersion: r.ApiVersion, Kind: r.Kind, Namespace: r.Namespace.Value, Name: r.Name}
}

// meta is what the accessors read: parsed once, on first use, skipping the
// rest of the object without building it.
type meta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name            string            `json:"name"`
		Namespace       string            `json:"namespace"`
		UID             string            `json:"uid"`
		ResourceVersion string            `json:"resourceVersion"`
		Labels          map[string]string `json:"labels"`
		Annotations     map[string]string `json:"annotations"`
	} `json:"metadata"`
}

// Object is a Kubernetes object as JSON, read lazily: the metadata
// accessors parse only apiVersion, kind and metadata, and the whole tree is
// built only by Get, Value or Decode.
type Object struct {
	raw   string
	meta  *meta
	value map[string]any
	err   error
}

// ParseObject wraps an object's JSON; nothing is parsed yet.
func ParseObject(json string) *Object { return &Object{raw: json} }

// Raw is the object's JSON, as the host sent it.
func (o *Object) Raw() string { return o.raw }

func (o *Object) bytes() []byte {
	return unsafe.Slice(unsafe.StringData(o.raw), len(o.raw))
}

func (o *Object) m() *meta {
	if o.meta == nil {
		o.meta = &meta{}
		if o.raw != "" {
			_ = json.Unmarshal(o.bytes(), o.meta)
		}
	}
	return o.meta
}

// APIVersion is the object's apiVersion.
func (o *Object) APIVersion() string { return o.m().APIVersion }

// Kind is the object's kind.
func (o *Object) Kind() string { return o.m().Kind }

// Name is metadata.name.
func (o *Object) Name() string { return o.m().Metadata.Name }

// Namespace is metadata.namespace ("" for a cluster-scoped object).
func (o *Object) Namespace() string { return o.m().Metadata.Namespace }

// UID is metadata.uid.
func (o *Object) UID() string { return o.m().Metadata.UID }

// ResourceVersion is metadata.resourceVersion.
func (o *Object) ResourceVersion() string { return o.m().Metadata.ResourceVersion }

// Labels are metadata.labels (never nil).
func (o *Object) Labels() map[string]string {
	if o.m().Metadata.Labels == nil {
		o.m().Metadata.Labels = map[string]string{}
	}
	return o.m().Metadata.Labels
}

// Label is one label, and whether it is there.
func (o *Object) Label(key string) (string, bool) {
	v, ok := o.m().Metadata.Labels[key]
	return v, ok
}

// Annotations are metadata.annotations (never nil).
func (o *Object) Annotations() map[string]string {
	if o.m().Metadata.Annotations == nil {
		o.m().Metadata.Annotations = map[string]string{}
	}
	return o.m().Metadata.Annotations
}

// Annotation is one annotation, and whether it is there.
func (o *Object) Annotation(key string) (string, bool) {
	v, ok := o.m().Metadata.Annotations[key]
	return v, ok
}

// Ref names the object.
func (o *Object) Ref() ObjectRef {
	m := o.m()
	return ObjectRef{APIVersion: m.APIVersion, Kind: m.Kind, Namespace: m.Metadata.Namespace, Name: m.Metadata.Name}
}

// Value is the whole object as a tree of maps, slices, strings, float64s,
// bools and nils (nil if the JSON is not an object).
func (o *Object) Value() map[string]any {
	if o.value == nil && o.err == nil && o.raw != "" {
		o.err = json.Unmarshal(o.bytes(), &o.value)
	}
	return o.value
}

// Get is the value at a dotted path, numbers indexing lists:
// Get("spec.replicas"), Get("spec.containers.0.image"); nil when missing.
func (o *Object) Get(path string) any {
	var v any = o.Value()
	for _, step := range strings.Split(path, ".") {
		if step == "" {
			continue
		}
		switch t := v.(type) {
		case map[string]any:
			v = t[step]
		case []any:
			i, err := strconv.Atoi(step)
			if err != nil || i < 0 || i >= len(t) {
				return nil
			}
			v = t[i]
		default:
			return nil
		}
		if v == nil {
			return nil
		}
	}
	return v
}

// GetString is Get as a string, and whether it is one.
func (o *Object) GetString(path string) (string, bool) {
	s, ok := o.Get(path).(string)
	return s, ok
}

// Decode parses the object into v: a struct of your own, or a type from
// k8s.io/api if your module has it.
func (o *Object) Decode(v any) error {
	if err := json.Unmarshal(o.bytes(), v); err != nil {
		return &Error{Code: Invalid, Message: o.Ref().String() + ": " + err.Error()}
	}
	return nil
}

// Event is one event delivered to Handle.
type Event struct {
	// Type is what happened.
	Type EventType
	// Subscription is the position, in the manifest, of the subscription
	// the event is delivered for.
	Subscription uint32
	// Initial is true for the Added events of a subscription's initial list.
	Initial bool
	// FinalStateUnknown is true for a Deleted event the host inferred from a
	// relist: the object's state is the last one seen, maybe stale.
	FinalStateUnknown bool
	// Merged is how many earlier events of the object were merged into this
	// one while it waited (0: none); the object is the newest state.
	Merged uint32
	object    *Object
	oldObject *Object
}

// NewEvent makes an event, for a plugin's own unit tests.
func NewEvent(t EventType, object string) *Event {
	return &Event{Type: t, object: ParseObject(object)}
}

// Object is the event's object (empty for Synced), parsed on first use.
func (e *Event) Object() *Object { return e.object }

// OldObject is the previous state for Modified events of a subscription
// with OldObject, when the host knew it; nil otherwise.
func (e *Event) OldObject() *Object { return e.oldObject }

// IsUpsert says whether the object exists now: Added, Modified or Resync.
func (e *Event) IsUpsert() bool {
	return e.Type == Added || e.Type == Modified || e.Type == Resync
}

func eventFromWit(e wit.Event) *Event {
	ev := &Event{
		Type:              eventTypeFromWit(e.EventType),
		Subscription:      e.Subscription,
		Initial:           e.Initial,
		FinalStateUnknown: e.FinalStateUnknown,
		Merged:            e.Merged,
		object:            ParseObject(e.Object),
	}
	if e.OldObject.Some {
		ev.oldObject = ParseObject(e.OldObject.Value)
	}
	return ev
}
