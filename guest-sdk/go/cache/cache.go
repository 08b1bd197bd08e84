// Package cache reads the host's cache of watched objects.
//
// Only kinds the plugin subscribes to or declares with Manifest.Reads can be
// read; anything else fails with an *informant.Error of code Forbidden.
// Reads see the cache as of the call; they never reach the API server.
package cache

import (
	informant "github.com/informant-dev/informant/guest-sdk/go"
	"github.com/informant-dev/informant/guest-sdk/go/internal/wit"
)

// Get is one object, or nil (and no error) if it is not in the cache.
// namespace is "" for a cluster-scoped kind.
func Get(apiVersion, kind, namespace, name string) (*informant.Object, error) {
	ref := informant.ObjectRef{APIVersion: apiVersion, Kind: kind, Namespace: namespace, Name: name}
	r := wit.CacheGet(ref.ToWit())
	if r.IsErr {
		return nil, informant.FromWit(r.Err)
	}
	if !r.Ok.Some {
		return nil, nil
	}
	return informant.ParseObject(r.Ok.Value), nil
}

// Option narrows List and ListKeys.
type Option func(*query)

type query struct {
	namespace, selector wit.Option[string]
}

// InNamespace lists only one namespace.
func InNamespace(namespace string) Option {
	return func(q *query) { q.namespace = wit.Some(namespace) }
}

// Selector lists only objects matching a label selector ("app=web,!legacy").
func Selector(labelSelector string) Option {
	return func(q *query) { q.selector = wit.Some(labelSelector) }
}

func options(opts []Option) query {
	var q query
	for _, o := range opts {
		o(&q)
	}
	return q
}

// List is the objects of a kind, ordered by namespace and name.
func List(apiVersion, kind string, opts ...Option) ([]*informant.Object, error) {
	q := options(opts)
	r := wit.CacheList(apiVersion, kind, q.namespace, q.selector)
	if r.IsErr {
		return nil, informant.FromWit(r.Err)
	}
	return objects(r.Ok), nil
}

// ListKeys is like List, but only the references: cheap, nothing is copied.
func ListKeys(apiVersion, kind string, opts ...Option) ([]informant.ObjectRef, error) {
	q := options(opts)
	r := wit.CacheListKeys(apiVersion, kind, q.namespace, q.selector)
	if r.IsErr {
		return nil, informant.FromWit(r.Err)
	}
	return refs(r.Ok), nil
}

// ByIndex is the objects whose index (declared with Manifest.Index) has the
// key value, ordered by namespace and name.
func ByIndex(index, value string) ([]*informant.Object, error) {
	r := wit.CacheByIndex(index, value)
	if r.IsErr {
		return nil, informant.FromWit(r.Err)
	}
	return objects(r.Ok), nil
}

// ByIndexKeys is like ByIndex, but only the references.
func ByIndexKeys(index, value string) ([]informant.ObjectRef, error) {
	r := wit.CacheByIndexKeys(index, value)
	if r.IsErr {
		return nil, informant.FromWit(r.Err)
	}
	return refs(r.Ok), nil
}

// IndexValues is every key present in the index, sorted.
func IndexValues(index string) ([]string, error) {
	r := wit.CacheIndexValues(index)
	if r.IsErr {
		return nil, informant.FromWit(r.Err)
	}
	return r.Ok, nil
}

func objects(texts []string) []*informant.Object {
	out := make([]*informant.Object, len(texts))
	for i, t := range texts {
		out[i] = informant.ParseObject(t)
	}
	return out
}

func refs(rs []wit.ObjectRef) []informant.ObjectRef {
	out := make([]informant.ObjectRef, len(rs))
	for i, r := range rs {
		out[i] = informant.RefFromWit(r)
	}
	return out
}
