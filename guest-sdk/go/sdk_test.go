package informant

import (
	"errors"
	"strings"
	"testing"

	"github.com/informant-dev/informant/guest-sdk/go/internal/wit"
)

const configMap = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"app","namespace":"shop","uid":"u1","resourceVersion":"7","labels":{"team":"a"},"annotations":{"note":"hi"}},"data":{"items":"x,y"},"spec":{"containers":[{"image":"nginx"}]}}`

func TestObjectAccessorsReadTheMetadata(t *testing.T) {
	o := ParseObject(configMap)
	if o.Name() != "app" || o.Namespace() != "shop" || o.Kind() != "ConfigMap" || o.APIVersion() != "v1" || o.UID() != "u1" || o.ResourceVersion() != "7" {
		t.Fatalf("metadata: %+v", o.Ref())
	}
	if v, ok := o.Label("team"); !ok || v != "a" {
		t.Fatalf("label team: %q %v", v, ok)
	}
	if _, ok := o.Label("missing"); ok {
		t.Fatal("a missing label is there")
	}
	if v, _ := o.Annotation("note"); v != "hi" {
		t.Fatalf("annotation: %q", v)
	}
	if o.Ref().String() != "ConfigMap shop/app" {
		t.Fatalf("ref: %s", o.Ref())
	}
	if (ObjectRef{Kind: "Namespace", Name: "shop"}).String() != "Namespace shop" {
		t.Fatal("a cluster-scoped ref names no namespace")
	}
}

func TestGetWalksDottedPathsAndListIndexes(t *testing.T) {
	o := ParseObject(configMap)
	if v, _ := o.GetString("spec.containers.0.image"); v != "nginx" {
		t.Fatalf("image: %v", o.Get("spec.containers.0.image"))
	}
	for _, missing := range []string{"spec.containers.1.image", "spec.nothing", "data.items.0", "spec.containers.x"} {
		if o.Get(missing) != nil {
			t.Fatalf("%s: %v", missing, o.Get(missing))
		}
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := o.Decode(&cm); err != nil || cm.Data["items"] != "x,y" {
		t.Fatalf("decode: %v %v", err, cm)
	}
}

func TestSettingsDecodeRefusesUnknownFieldsWithInvalid(t *testing.T) {
	type settings struct {
		Team string `json:"team"`
	}
	s := settings{Team: "default"}
	if err := NewSettings("null").Decode(&s); err != nil || s.Team != "default" {
		t.Fatalf("null settings: %v %v", err, s)
	}
	if err := NewSettings(`{"team":"b"}`).Decode(&s); err != nil || s.Team != "b" {
		t.Fatalf("settings: %v %v", err, s)
	}
	err := NewSettings(`{"colour":"red"}`).Decode(&s)
	var e *Error
	if !errors.As(err, &e) || e.Code != Invalid || !strings.Contains(e.Message, "colour") {
		t.Fatalf("unknown field: %v", err)
	}
}

func TestTheManifestBuilderFillsTheContract(t *testing.T) {
	m := NewManifest("tour", "1.0.0").
		Subscribe(NewSubscription("v1", "ConfigMap").Namespace("n").Events(Added, Deleted).LatestState().ResyncSeconds(30)).
		Index("by-app", "v1", "ConfigMap", "metadata.labels.app").
		Reads("v1", "Secret").
		Writes("v1", "ConfigMap", Apply, PatchStatus).
		Events().
		Memory(48).Deadline(80).Instances(1).
		toWit()
	s := m.Subscriptions[0]
	if s.Namespace.Value != "n" || len(s.EventTypes) != 2 || s.EventTypes[1] != wit.EventTypeDeleted || s.Delivery != wit.DeliveryLatestState || s.ResyncSeconds.Value != 30 {
		t.Fatalf("subscription: %+v", s)
	}
	if len(m.Permissions.Writes) != 2 || m.Permissions.Writes[1].ApiVersion != "events.k8s.io/v1" || m.Permissions.Writes[0].Verbs[1] != wit.VerbPatchStatus {
		t.Fatalf("writes: %+v", m.Permissions.Writes)
	}
	if !m.Resources.Instances.Some || m.Resources.MemoryMib.Value != 48 || m.Resources.DeadlineMs.Value != 80 {
		t.Fatalf("resources: %+v", m.Resources)
	}
}

func TestErrorsAndPanicsBecomeTheContractsErrors(t *testing.T) {
	r := result(func() error { return Errorf(LimitExceeded, "too %s", "many") })
	if !r.IsErr || r.Err.Code != wit.ErrorCodeLimitExceeded || r.Err.Message != "too many" {
		t.Fatalf("an informant error: %+v", r)
	}
	r = result(func() error { return errors.New("plain") })
	if !r.IsErr || r.Err.Code != wit.ErrorCodeFailed || r.Err.Message != "plain" {
		t.Fatalf("a plain error: %+v", r)
	}
	r = result(func() error { panic("boom") })
	if !r.IsErr || r.Err.Code != wit.ErrorCodeFailed || !strings.HasPrefix(r.Err.Message, "panic: boom at ") || !strings.Contains(r.Err.Message, "sdk_test.go:") {
		t.Fatalf("a panic: %+v", r)
	}
	if r := result(func() error { return nil }); r.IsErr {
		t.Fatalf("success: %+v", r)
	}
}

func TestTheHostIsUnavailableOutsideAPlugin(t *testing.T) {
	defer func() {
		if p := recover(); p == nil || !strings.Contains(p.(error).Error(), "only inside a plugin component") {
			t.Fatalf("panic: %v", p)
		}
	}()
	wit.LogLog(wit.LevelInfo, "x")
}
