// replicator, in Go: the twin of plugins/replicator.
//
// Copies every ConfigMap and Secret labelled informant.dev/replicate=true
// into every other namespace, including namespaces created later, and
// removes the copies when the source goes. Copies are applied server-side,
// so re-running is harmless; they carry the label informant.dev/replica=true
// and the annotation informant.dev/replicated-from: <namespace>/<name>.
//
// Settings (optional): {"excludeNamespaces": ["kube-system"]}
package main

import (
	"slices"

	informant "github.com/informant-dev/informant/guest-sdk/go"
	"github.com/informant-dev/informant/guest-sdk/go/action"
	"github.com/informant-dev/informant/guest-sdk/go/cache"
	"github.com/informant-dev/informant/guest-sdk/go/log"
)

const selector = "informant.dev/replicate=true"

var (
	sourceKinds  = []string{"ConfigMap", "Secret"}
	copiedFields = []string{"data", "binaryData", "stringData", "type", "immutable"}
)

type settings struct {
	ExcludeNamespaces []string `json:"excludeNamespaces"`
}

type replicator struct {
	exclude []string
}

func (*replicator) Describe() *informant.Manifest {
	m := informant.NewManifest("replicator", "0.1.0")
	for _, kind := range sourceKinds {
		m.Subscribe(informant.NewSubscription("v1", kind).LabelSelector(selector).
			Events(informant.Added, informant.Modified, informant.Deleted, informant.Resync))
		m.Writes("v1", kind, informant.Apply, informant.Delete)
	}
	return m.Subscribe(informant.NewSubscription("v1", "Namespace").Events(informant.Added))
}

func (p *replicator) Init(s informant.Settings) error {
	cfg := settings{ExcludeNamespaces: []string{"kube-system", "kube-public", "kube-node-lease"}}
	if err := s.Decode(&cfg); err != nil {
		return err
	}
	p.exclude = cfg.ExcludeNamespaces
	return nil
}

// copyOf is the copy of source for namespace: only what the replicator owns.
func copyOf(source *informant.Object, namespace string) map[string]any {
	copy := map[string]any{
		"apiVersion": "v1",
		"kind":       source.Kind(),
		"metadata": map[string]any{
			"name":        source.Name(),
			"namespace":   namespace,
			"labels":      map[string]string{"informant.dev/replica": "true"},
			"annotations": map[string]string{"informant.dev/replicated-from": source.Namespace() + "/" + source.Name()},
		},
	}
	value := source.Value()
	for _, field := range copiedFields {
		if v, ok := value[field]; ok {
			copy[field] = v
		}
	}
	return copy
}

// targets is every namespace a copy of an object in sourceNamespace belongs in.
func (p *replicator) targets(sourceNamespace string) ([]string, error) {
	refs, err := cache.ListKeys("v1", "Namespace")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, ref := range refs {
		if ref.Name != sourceNamespace && !slices.Contains(p.exclude, ref.Name) {
			out = append(out, ref.Name)
		}
	}
	return out, nil
}

func (p *replicator) replicate(source *informant.Object, namespaces []string) error {
	for _, ns := range namespaces {
		if err := action.Apply(copyOf(source, ns)); err != nil {
			return err
		}
	}
	if len(namespaces) > 0 {
		log.Infof("%s: applied %d copies", source.Ref(), len(namespaces))
	}
	return nil
}

func (p *replicator) Handle(event *informant.Event) error {
	obj := event.Object()
	if obj.Kind() == "Namespace" {
		// Sources already present are replicated by their own initial
		// events; a namespace created later needs every source.
		if event.Initial || slices.Contains(p.exclude, obj.Name()) {
			return nil
		}
		for _, kind := range sourceKinds {
			sources, err := cache.List("v1", kind, cache.Selector(selector))
			if err != nil {
				return err
			}
			for _, source := range sources {
				if source.Namespace() != obj.Name() {
					if err := p.replicate(source, []string{obj.Name()}); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	targets, err := p.targets(obj.Namespace())
	if err != nil {
		return err
	}
	if event.Type == informant.Deleted {
		for _, ns := range targets {
			ref := informant.ObjectRef{APIVersion: "v1", Kind: obj.Kind(), Namespace: ns, Name: obj.Name()}
			if err := action.Delete(ref); err != nil {
				return err
			}
		}
		log.Infof("%s: deleted; removing %d copies", obj.Ref(), len(targets))
		return nil
	}
	return p.replicate(obj, targets)
}

func init() { informant.Export(&replicator{}) }

func main() {}
