// label-enforcer, in Go: the twin of plugins/label-enforcer.
//
// Every ConfigMap and Deployment carries the labels the platform team
// requires, with values from an allowed set:
//
//   - a missing required label is added with its default, by a merge patch;
//   - a label whose value is not allowed is reset to the first allowed
//     value, by a JSON patch guarded with a `test` operation, so that a
//     concurrent change by someone else is never overwritten;
//   - namespaces labelled informant.dev/enforce-labels=disabled are skipped.
//
// Settings (all optional):
//
//	{"required": {"owner": "unassigned"},
//	 "allowed": {"env": ["dev", "staging", "prod"]},
//	 "ignoreNamespaces": ["kube-system"]}
package main

import (
	"slices"
	"sort"
	"strings"

	informant "github.com/informant-dev/informant/guest-sdk/go"
	"github.com/informant-dev/informant/guest-sdk/go/action"
	"github.com/informant-dev/informant/guest-sdk/go/cache"
	"github.com/informant-dev/informant/guest-sdk/go/log"
)

type settings struct {
	Required         map[string]string   `json:"required"`
	Allowed          map[string][]string `json:"allowed"`
	IgnoreNamespaces []string            `json:"ignoreNamespaces"`
}

type labelEnforcer struct {
	settings settings
}

func (*labelEnforcer) Describe() *informant.Manifest {
	events := []informant.EventType{informant.Added, informant.Modified, informant.Resync}
	return informant.NewManifest("label-enforcer", "0.1.0").
		Subscribe(informant.NewSubscription("v1", "ConfigMap").Events(events...).LatestState()).
		Subscribe(informant.NewSubscription("apps/v1", "Deployment").Events(events...).LatestState()).
		Reads("v1", "Namespace").
		Writes("v1", "ConfigMap", informant.Patch).
		Writes("apps/v1", "Deployment", informant.Patch)
}

func (p *labelEnforcer) Init(s informant.Settings) error {
	// A setting given replaces its default (decoding into a map with the
	// defaults would merge them).
	p.settings = settings{}
	if err := s.Decode(&p.settings); err != nil {
		return err
	}
	if p.settings.Required == nil {
		p.settings.Required = map[string]string{"owner": "unassigned"}
	}
	if p.settings.IgnoreNamespaces == nil {
		p.settings.IgnoreNamespaces = []string{"kube-system", "kube-public", "kube-node-lease"}
	}
	for key, values := range p.settings.Allowed {
		if len(values) == 0 {
			return informant.Errorf(informant.Invalid, "allowed.%s lists no value", key)
		}
	}
	return nil
}

// pointerEscape is a label key as one JSON pointer step (RFC 6901).
func pointerEscape(key string) string {
	return strings.ReplaceAll(strings.ReplaceAll(key, "~", "~0"), "/", "~1")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (p *labelEnforcer) Handle(event *informant.Event) error {
	obj := event.Object()
	namespace := obj.Namespace()
	if namespace == "" || slices.Contains(p.settings.IgnoreNamespaces, namespace) {
		return nil
	}
	ns, err := cache.Get("v1", "Namespace", "", namespace)
	if err != nil {
		return err
	}
	if ns != nil {
		if v, _ := ns.Label("informant.dev/enforce-labels"); v == "disabled" {
			log.Debugf("%s skipped: its namespace opts out", obj.Ref())
			return nil
		}
	}

	missing := map[string]string{}
	for _, key := range sortedKeys(p.settings.Required) {
		if _, ok := obj.Label(key); !ok {
			missing[key] = p.settings.Required[key]
		}
	}
	if len(missing) > 0 {
		log.Infof("%s: adding labels %v", obj.Ref(), missing)
		patch := map[string]any{"metadata": map[string]any{"labels": missing}}
		if err := action.MergePatch(obj, patch); err != nil {
			return err
		}
	}

	var operations []map[string]any
	for _, key := range sortedKeys(p.settings.Allowed) {
		allowed := p.settings.Allowed[key]
		value, ok := obj.Label(key)
		if ok && !slices.Contains(allowed, value) {
			path := "/metadata/labels/" + pointerEscape(key)
			log.Infof("%s: label %s=%s is not allowed; resetting it to %s", obj.Ref(), key, value, allowed[0])
			operations = append(operations,
				map[string]any{"op": "test", "path": path, "value": value},
				map[string]any{"op": "replace", "path": path, "value": allowed[0]})
		}
	}
	if len(operations) > 0 {
		return action.JSONPatch(obj, operations)
	}
	return nil
}

func init() { informant.Export(&labelEnforcer{}) }

func main() {}
