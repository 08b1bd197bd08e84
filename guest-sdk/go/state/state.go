// Package state is the plugin's own key-value store, kept by the host
// (contract 0.3.0). Values are JSON unless written with SetBytes:
//
//	key := "restarts/" + event.Object().Ref().String()
//	if ok, _ := state.Exists(key); !ok {
//		state.Set(key, 0, state.TTL(time.Hour)) // expires an hour after this call commits
//	}
//	if n, _ := state.Increment(key, 1); n > 3 {
//		return nil // over budget: no restart this hour
//	}
//
// The guarantees, the same in every SDK:
//
//   - One store per plugin, shared by all its instances; it survives
//     instance recycling and hot reload of the same plugin name.
//   - Committed with the call: writes take effect only if Handle returns
//     nil, like actions; an error, a panic or a timeout leaves the store as
//     it was. Reads see the call's own writes.
//   - Isolated: a call whose reads another instance changed before it
//     committed runs again with the same event, so Increment,
//     CompareAndSwap and a read followed by a write are atomic across
//     instances.
//   - Tiers (Manifest.State): memory (the default; lost when the host
//     stops) or durable (kept in the cluster).
//   - Limits: quotas on keys, value size and total bytes; a write past them
//     fails with an *informant.Error of code LimitExceeded. Keys are 1-512
//     bytes. Init cannot use the store; Handle can.
package state

import (
	"encoding/json"
	"sort"
	"time"

	informant "github.com/informant-dev/informant/guest-sdk/go"
	"github.com/informant-dev/informant/guest-sdk/go/internal/wit"
)

// Option changes a write.
type Option func(*write)

type write struct {
	ttl wit.Option[uint64]
}

// TTL makes the keys written expire this long after the call commits (at
// least a millisecond).
func TTL(d time.Duration) Option {
	ms := uint64(d / time.Millisecond)
	if ms == 0 {
		ms = 1
	}
	return func(w *write) { w.ttl = wit.Some(ms) }
}

func options(opts []Option) write {
	var w write
	for _, o := range opts {
		o(&w)
	}
	return w
}

func encode(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, informant.Errorf(informant.Invalid, "state value: %v", err)
	}
	return data, nil
}

func decode(data []byte, into any) error {
	if err := json.Unmarshal(data, into); err != nil {
		return informant.Errorf(informant.Invalid, "state value: %v", err)
	}
	return nil
}

// GetBytes is the raw value of key, and whether it exists.
func GetBytes(key string) ([]byte, bool, error) {
	r := wit.StateGet(key)
	if r.IsErr {
		return nil, false, informant.FromWit(r.Err)
	}
	return r.Ok.Value, r.Ok.Some, nil
}

// Get decodes the JSON value of key into into, and says whether it exists
// (into is left alone if not).
func Get(key string, into any) (bool, error) {
	data, found, err := GetBytes(key)
	if err != nil || !found {
		return false, err
	}
	return true, decode(data, into)
}

// GetVersioned is like Get, and also returns the value's version, for
// CompareAndSwap ("" when the key does not exist).
func GetVersioned(key string, into any) (string, bool, error) {
	r := wit.StateGetVersioned(key)
	if r.IsErr {
		return "", false, informant.FromWit(r.Err)
	}
	if !r.Ok.Some {
		return "", false, nil
	}
	return r.Ok.Value.Version, true, decode(r.Ok.Value.Value, into)
}

// SetBytes sets key to raw bytes.
func SetBytes(key string, value []byte, opts ...Option) error {
	if value == nil {
		value = []byte{}
	}
	r := wit.StateSet(key, value, options(opts).ttl)
	if r.IsErr {
		return informant.FromWit(r.Err)
	}
	return nil
}

// Set sets key to value, as JSON.
func Set(key string, value any, opts ...Option) error {
	data, err := encode(value)
	if err != nil {
		return err
	}
	return SetBytes(key, data, opts...)
}

// Delete removes key; nothing happens if it does not exist.
func Delete(key string) error {
	r := wit.StateDelete(key)
	if r.IsErr {
		return informant.FromWit(r.Err)
	}
	return nil
}

// Exists says whether key exists.
func Exists(key string) (bool, error) {
	r := wit.StateExists(key)
	if r.IsErr {
		return false, informant.FromWit(r.Err)
	}
	return r.Ok, nil
}

// CompareAndSwap sets key to value (as JSON) only if its version is still
// expected, as GetVersioned returned it; expected "" sets it only if the
// key does not exist. It says whether it was set.
func CompareAndSwap(key, expected string, value any, opts ...Option) (bool, error) {
	data, err := encode(value)
	if err != nil {
		return false, err
	}
	version := wit.None[string]()
	if expected != "" {
		version = wit.Some(expected)
	}
	r := wit.StateCompareAndSwap(key, version, data, options(opts).ttl)
	if r.IsErr {
		return false, informant.FromWit(r.Err)
	}
	return r.Ok, nil
}

// Increment adds delta to the integer at key (0 if absent) and returns the
// sum; the key keeps its time to live.
func Increment(key string, delta int64) (int64, error) {
	r := wit.StateIncrement(key, delta)
	if r.IsErr {
		return 0, informant.FromWit(r.Err)
	}
	return r.Ok, nil
}

// GetMany is the raw JSON values of several keys, in order; nil where a key
// does not exist.
func GetMany(keys ...string) ([]json.RawMessage, error) {
	r := wit.StateGetMany(keys)
	if r.IsErr {
		return nil, informant.FromWit(r.Err)
	}
	out := make([]json.RawMessage, len(r.Ok))
	for i, v := range r.Ok {
		if v.Some {
			out[i] = v.Value
		}
	}
	return out, nil
}

// SetMany sets several keys to their values (as JSON), all or none.
func SetMany(entries map[string]any, opts ...Option) error {
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([]wit.Tuple2[string, []uint8], 0, len(keys))
	for _, k := range keys {
		data, err := encode(entries[k])
		if err != nil {
			return err
		}
		pairs = append(pairs, wit.Tuple2[string, []uint8]{F0: k, F1: data})
	}
	r := wit.StateSetMany(pairs, options(opts).ttl)
	if r.IsErr {
		return informant.FromWit(r.Err)
	}
	return nil
}

// DeleteMany removes several keys.
func DeleteMany(keys ...string) error {
	r := wit.StateDeleteMany(keys)
	if r.IsErr {
		return informant.FromWit(r.Err)
	}
	return nil
}

// Keys is every key that starts with prefix, in byte order, read a page at a
// time.
func Keys(prefix string) ([]string, error) {
	var out []string
	cursor := wit.None[string]()
	for {
		r := wit.StateListKeys(prefix, cursor, 0)
		if r.IsErr {
			return nil, informant.FromWit(r.Err)
		}
		out = append(out, r.Ok.Keys...)
		if !r.Ok.Cursor.Some {
			return out, nil
		}
		cursor = r.Ok.Cursor
	}
}
