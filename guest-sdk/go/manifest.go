package informant

import "github.com/informant-dev/informant/guest-sdk/go/internal/wit"

// EventType is what happened to an object.
type EventType uint8

const (
	// Added: the object appeared (created, or there when the subscription started: Initial).
	Added EventType = iota
	// Modified: the object changed.
	Modified
	// Deleted: the object is gone; the event carries its last known state.
	Deleted
	// Synced: every object of the subscription's start has been delivered. No object.
	Synced
	// Resync: a periodic replay, or a redelivery asked for with action.RequeueAfter.
	Resync
)

var eventTypeNames = [...]string{"added", "modified", "deleted", "synced", "resync"}

// String is the type as the contract names it: "added".
func (t EventType) String() string {
	if int(t) < len(eventTypeNames) {
		return eventTypeNames[t]
	}
	return "unknown"
}

func (t EventType) toWit() wit.EventType {
	return [...]wit.EventType{wit.EventTypeAdded, wit.EventTypeModified, wit.EventTypeDeleted, wit.EventTypeSynced, wit.EventTypeResync}[t]
}

func eventTypeFromWit(t wit.EventType) EventType {
	switch t {
	case wit.EventTypeAdded:
		return Added
	case wit.EventTypeModified:
		return Modified
	case wit.EventTypeDeleted:
		return Deleted
	case wit.EventTypeSynced:
		return Synced
	default:
		return Resync
	}
}

// Verb is what a plugin may do to a kind.
type Verb uint8

const (
	// Apply: server-side apply (action.Apply).
	Apply Verb = iota
	// Create: action.Create.
	Create
	// Patch: merge and JSON patches (action.MergePatch, action.JSONPatch).
	Patch
	// PatchStatus: patches of the status subresource (action.PatchStatus).
	PatchStatus
	// Delete: action.Delete.
	Delete
)

func (v Verb) toWit() wit.Verb {
	return [...]wit.Verb{wit.VerbApply, wit.VerbCreate, wit.VerbPatch, wit.VerbPatchStatus, wit.VerbDelete}[v]
}

// Subscription asks for the events of one kind. Build it with
// [NewSubscription] and its methods.
type Subscription struct {
	apiVersion, kind string
	namespace        wit.Option[string]
	labelSelector    wit.Option[string]
	fieldSelector    wit.Option[string]
	events           []EventType
	latestState      bool
	oldObject        bool
	resyncSeconds    wit.Option[uint32]
	fields           wit.Option[[]string]
}

// NewSubscription subscribes to the events of a kind: apiVersion "v1" or
// "apps/v1", kind "ConfigMap" (or its plural or a short name). By default,
// in every namespace, every event type, every event delivered.
func NewSubscription(apiVersion, kind string) *Subscription {
	return &Subscription{apiVersion: apiVersion, kind: kind}
}

// Namespace limits the subscription to one namespace.
func (s *Subscription) Namespace(namespace string) *Subscription {
	s.namespace = wit.Some(namespace)
	return s
}

// LabelSelector limits it to objects matching a label selector ("app=web,!legacy").
func (s *Subscription) LabelSelector(selector string) *Subscription {
	s.labelSelector = wit.Some(selector)
	return s
}

// FieldSelector limits it to objects matching a field selector ("metadata.name=x").
func (s *Subscription) FieldSelector(selector string) *Subscription {
	s.fieldSelector = wit.Some(selector)
	return s
}

// Events limits the event types delivered (none given: all of them).
func (s *Subscription) Events(types ...EventType) *Subscription {
	s.events = append(s.events, types...)
	return s
}

// LatestState merges an object's pending events: the plugin sees its newest
// state, or its deletion, once (Event.Merged counts what was folded in).
// Best for reconcilers.
func (s *Subscription) LatestState() *Subscription {
	s.latestState = true
	return s
}

// OldObject delivers the previous state with Modified events (Event.OldObject).
func (s *Subscription) OldObject() *Subscription {
	s.oldObject = true
	return s
}

// ResyncSeconds replays every cached object of the subscription as a
// Resync event this often.
func (s *Subscription) ResyncSeconds(seconds uint32) *Subscription {
	s.resyncSeconds = wit.Some(seconds)
	return s
}

// Fields declares the fields the plugin reads ("metadata.labels",
// "spec.nodeName", "spec.containers[*].image"), so that the host may keep
// only those in its cache. Events and cache reads then carry only what is
// kept; the annotation "informant.dev/projection" says which. Declare every
// field the plugin reads. Default: whole objects.
func (s *Subscription) Fields(paths ...string) *Subscription {
	s.fields = wit.Some(append([]string(nil), paths...))
	return s
}

func (s *Subscription) toWit() wit.Subscription {
	types := make([]wit.EventType, len(s.events))
	for i, t := range s.events {
		types[i] = t.toWit()
	}
	delivery := wit.DeliveryEveryEvent
	if s.latestState {
		delivery = wit.DeliveryLatestState
	}
	return wit.Subscription{
		ApiVersion: s.apiVersion, Kind: s.kind, Namespace: s.namespace,
		LabelSelector: s.labelSelector, FieldSelector: s.fieldSelector,
		EventTypes: types, Delivery: delivery, OldObject: s.oldObject, ResyncSeconds: s.resyncSeconds,
		Fields: s.fields,
	}
}

// Manifest is what a plugin is and needs. Build it with [NewManifest] and
// its methods, and return it from Describe.
type Manifest struct {
	name, version string
	subscriptions []*Subscription
	indexes       []wit.Index
	reads         []wit.KindRef
	writes        []wit.WritePermission
	resources     wit.ResourceRequest
	state         wit.Option[wit.StateRequest]
}

// StateTier is where the plugin's store is kept (package state).
type StateTier uint8

const (
	// Memory: in the host's memory, lost when the host stops (the default).
	Memory StateTier = iota
	// Durable: in the cluster, in PluginState objects the host owns, loaded
	// before the plugin's first call.
	Durable
)

// StateQuota asks for quotas other than the operator's defaults, within its
// maximum; zero leaves one as it is.
type StateQuota struct {
	MaxKeys       uint32
	MaxValueBytes uint32
	MaxTotalBytes uint64
}

// NewManifest starts a manifest: name is a DNS label (it names the plugin
// in logs, metrics and field managers), version is free-form.
func NewManifest(name, version string) *Manifest {
	return &Manifest{name: name, version: version}
}

// Subscribe adds a subscription; events carry its position (Event.Subscription).
func (m *Manifest) Subscribe(s *Subscription) *Manifest {
	m.subscriptions = append(m.subscriptions, s)
	return m
}

// Index declares an index over the cache for cache.ByIndex: the values at
// fieldPaths ("spec.nodeName", "metadata.labels.app",
// "metadata.ownerReferences[*].uid") are its keys.
func (m *Manifest) Index(name, apiVersion, kind string, fieldPaths ...string) *Manifest {
	m.indexes = append(m.indexes, wit.Index{Name: name, ApiVersion: apiVersion, Kind: kind, FieldPaths: fieldPaths})
	return m
}

// Reads declares a kind the plugin reads from the cache without subscribing to it.
func (m *Manifest) Reads(apiVersion, kind string) *Manifest {
	m.reads = append(m.reads, wit.KindRef{ApiVersion: apiVersion, Kind: kind})
	return m
}

// Writes declares what the plugin may do to a kind.
func (m *Manifest) Writes(apiVersion, kind string, verbs ...Verb) *Manifest {
	w := make([]wit.Verb, len(verbs))
	for i, v := range verbs {
		w[i] = v.toWit()
	}
	m.writes = append(m.writes, wit.WritePermission{ApiVersion: apiVersion, Kind: kind, Verbs: w})
	return m
}

// Events allows emitting Kubernetes Events (action.Event).
func (m *Manifest) Events() *Manifest {
	return m.Writes("events.k8s.io/v1", "Event", Create)
}

// Memory asks for this much linear memory per instance, within the operator's maximum.
func (m *Manifest) Memory(mib uint32) *Manifest {
	m.resources.MemoryMib = wit.Some(mib)
	return m
}

// Deadline asks for this deadline per call, within the operator's maximum.
// It is wall-clock time: on a busy host a call gets less CPU within it.
func (m *Manifest) Deadline(ms uint32) *Manifest {
	m.resources.DeadlineMs = wit.Some(ms)
	return m
}

// Instances bounds how many instances run calls at once. With 1, every call
// runs on one instance, one at a time, in delivery order, so state kept in
// memory is consistent (until the instance is replaced).
func (m *Manifest) Instances(n uint32) *Manifest {
	m.resources.Instances = wit.Some(n)
	return m
}

// State says where to keep the plugin's store (package state), and with
// which quotas (at most one StateQuota).
func (m *Manifest) State(tier StateTier, quota ...StateQuota) *Manifest {
	request := wit.StateRequest{Tier: wit.StateTierMemory}
	if tier == Durable {
		request.Tier = wit.StateTierDurable
	}
	for _, q := range quota {
		if q.MaxKeys > 0 {
			request.MaxKeys = wit.Some(q.MaxKeys)
		}
		if q.MaxValueBytes > 0 {
			request.MaxValueBytes = wit.Some(q.MaxValueBytes)
		}
		if q.MaxTotalBytes > 0 {
			request.MaxTotalBytes = wit.Some(q.MaxTotalBytes)
		}
	}
	m.state = wit.Some(request)
	return m
}

func (m *Manifest) toWit() wit.Manifest {
	subs := make([]wit.Subscription, len(m.subscriptions))
	for i, s := range m.subscriptions {
		subs[i] = s.toWit()
	}
	indexes := m.indexes
	if indexes == nil {
		indexes = []wit.Index{}
	}
	return wit.Manifest{
		Name: m.name, Version: m.version, Subscriptions: subs, Indexes: indexes,
		Permissions: wit.Permissions{Reads: m.reads, Writes: m.writes},
		Resources:   m.resources,
		State:       m.state,
	}
}
