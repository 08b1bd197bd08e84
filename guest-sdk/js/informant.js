// Write Informant plugins in JavaScript.
//
// A plugin is one module whose default export is a subclass of `Plugin`:
//
//     import { Plugin, Manifest, Subscription, action, log } from "informant";
//
//     export default class Hello extends Plugin {
//       describe() {
//         return new Manifest("hello", "0.1.0")
//           .subscribe(new Subscription("v1", "ConfigMap", { events: ["added"] }))
//           .writes("v1", "ConfigMap", ["patch"]);
//       }
//       handle(event) {
//         const cm = event.object;
//         if (cm.label("greeted") === undefined) {
//           log.info(`greeting ${cm.ref()}`);
//           action.mergePatch(cm, { metadata: { labels: { greeted: "yes" } } });
//         }
//       }
//     }
//
// Build it with `node guest-sdk/js/build.mjs hello.js`. Actions are committed
// only if `handle` returns normally; throwing discards them. Throw an
// `InformantError` to choose the error code the host logs.

import * as witCache from "informant:plugin/cache@0.3.0";
import * as witActions from "informant:plugin/actions@0.3.0";
import { log as witLog } from "informant:plugin/log@0.3.0";
import * as witState from "informant:plugin/state@0.3.0";

const ERROR_CODES = ["invalid", "forbidden", "limit-exceeded", "not-found", "failed"];
const EVENT_TYPES = ["added", "modified", "deleted", "synced", "resync"];
const VERBS = ["apply", "create", "patch", "patch-status", "delete"];
const STATE_TIERS = ["memory", "durable"];

/** An error with a code: thrown by the host's calls, or by the plugin. */
export class InformantError extends Error {
  constructor(message, code = "failed") {
    if (!ERROR_CODES.includes(code)) {
      throw new TypeError(`unknown error code ${JSON.stringify(code)}; one of ${ERROR_CODES.join(", ")}`);
    }
    super(message);
    this.name = "InformantError";
    this.code = code;
  }

  toString() {
    return `${this.code}: ${this.message}`;
  }
}

/** Call an import, turning its error result into an `InformantError`. */
function hostCall(fn, ...args) {
  try {
    return fn(...args);
  } catch (e) {
    const payload = e && e.payload;
    if (payload && typeof payload.code === "string") {
      throw new InformantError(payload.message, payload.code);
    }
    throw e;
  }
}

function check(list, value, what) {
  if (!list.includes(value)) {
    throw new TypeError(`unknown ${what} ${JSON.stringify(value)}; one of ${list.join(", ")}`);
  }
  return value;
}

/** Names one object. */
export class ObjectRef {
  constructor(apiVersion, kind, name, namespace = undefined) {
    this.apiVersion = apiVersion;
    this.kind = kind;
    this.name = name;
    this.namespace = namespace ?? undefined;
  }

  /** An `ObjectRef` from an `ObjectRef`, a `KubeObject` or a plain object. */
  static of(target) {
    if (target instanceof ObjectRef) return target;
    if (target && typeof target === "object" && target.metadata) {
      return new ObjectRef(target.apiVersion, target.kind, target.metadata.name, target.metadata.namespace);
    }
    throw new TypeError("expected an ObjectRef or a Kubernetes object");
  }

  toString() {
    return this.namespace === undefined
      ? `${this.kind} ${this.name}`
      : `${this.kind} ${this.namespace}/${this.name}`;
  }

  toWit() {
    return { apiVersion: this.apiVersion, kind: this.kind, namespace: this.namespace, name: this.name };
  }

  static fromWit(r) {
    return new ObjectRef(r.apiVersion, r.kind, r.name, r.namespace);
  }
}

/**
 * A Kubernetes object: the parsed JSON itself (`obj.metadata.name`,
 * `obj.spec`), with helpers on its prototype. A field of the object with the
 * same name as a helper (`name`, `labels`, ...) hides the helper.
 */
export class KubeObject {
  /** Parse JSON text into a `KubeObject` (an empty one for ""). */
  static parse(text) {
    return Object.setPrototypeOf(text ? JSON.parse(text) : {}, KubeObject.prototype);
  }

  /** A value by dotted path, where a number indexes a list: `get("spec.containers.0.image")`. */
  get(path) {
    let value = this;
    for (const step of path.split(".")) {
      if (step === "") continue;
      if (value === null || typeof value !== "object") return undefined;
      if (Array.isArray(value)) {
        value = /^\d+$/.test(step) ? value[Number(step)] : undefined;
      } else {
        value = Object.hasOwn(value, step) ? value[step] : undefined;
      }
      if (value === undefined) return undefined;
    }
    return value;
  }

  get name() {
    return this.metadata?.name ?? "";
  }

  get namespace() {
    return this.metadata?.namespace;
  }

  get uid() {
    return this.metadata?.uid ?? "";
  }

  get resourceVersion() {
    return this.metadata?.resourceVersion ?? "";
  }

  get labels() {
    return this.metadata?.labels ?? {};
  }

  get annotations() {
    return this.metadata?.annotations ?? {};
  }

  label(key) {
    return this.labels[key];
  }

  annotation(key) {
    return this.annotations[key];
  }

  /** The `ObjectRef` naming this object. */
  ref() {
    return ObjectRef.of(this);
  }
}

/**
 * One event: `type` is "added", "modified", "deleted", "synced" or "resync".
 * `merged` says how many earlier events of the object were merged into this
 * one while it waited (0: none); `object` is then the newest state.
 */
export class Event {
  constructor(e) {
    this.type = e.eventType;
    this.subscription = e.subscription;
    this.initial = e.initial;
    this.finalStateUnknown = e.finalStateUnknown;
    this.object = KubeObject.parse(e.object);
    this.oldObject = e.oldObject == null ? undefined : KubeObject.parse(e.oldObject);
    this.merged = e.merged;
  }

  /** The object exists now: added, modified or resynced. */
  get isUpsert() {
    return this.type === "added" || this.type === "modified" || this.type === "resync";
  }
}

/**
 * Events of one kind. Options: namespace, labelSelector, fieldSelector,
 * events (list of event types; empty means all), latestState, oldObject,
 * resyncSeconds, fields (the fields the plugin reads, e.g.
 * ["metadata.labels"], so that the host may keep only those in its cache;
 * events and cache reads then carry only what is kept, and the annotation
 * "informant.dev/projection" says which; default: whole objects).
 */
export class Subscription {
  constructor(apiVersion, kind, options = {}) {
    const events = options.events ?? [];
    this.wit = {
      apiVersion,
      kind,
      namespace: options.namespace,
      labelSelector: options.labelSelector,
      fieldSelector: options.fieldSelector,
      eventTypes: events.map((e) => check(EVENT_TYPES, e, "event type")),
      delivery: options.latestState ? "latest-state" : "every-event",
      oldObject: Boolean(options.oldObject),
      resyncSeconds: options.resyncSeconds,
      fields: options.fields,
    };
  }
}

/** The plugin's name, version and needs, built by chaining. */
export class Manifest {
  constructor(name, version) {
    this.manifest = {
      name,
      version,
      subscriptions: [],
      indexes: [],
      permissions: { reads: [], writes: [] },
      resources: { memoryMib: undefined, deadlineMs: undefined, instances: undefined },
      state: undefined,
      admission: undefined,
    };
  }

  subscribe(subscription) {
    this.manifest.subscriptions.push(subscription.wit);
    return this;
  }

  /** An index over the cache: `index("by-node", "v1", "Pod", ["spec.nodeName"])`. */
  index(name, apiVersion, kind, fieldPaths) {
    const paths = typeof fieldPaths === "string" ? [fieldPaths] : [...fieldPaths];
    this.manifest.indexes.push({ name, apiVersion, kind, fieldPaths: paths });
    return this;
  }

  reads(apiVersion, kind) {
    this.manifest.permissions.reads.push({ apiVersion, kind });
    return this;
  }

  writes(apiVersion, kind, verbs) {
    const checked = verbs.map((v) => check(VERBS, v, "verb"));
    this.manifest.permissions.writes.push({ apiVersion, kind, verbs: checked });
    return this;
  }

  /** Allow emitting Kubernetes Events. */
  events() {
    return this.writes("events.k8s.io/v1", "Event", ["create"]);
  }

  /** Ask for this much linear memory, within the operator's maximum. */
  memory(mib) {
    this.manifest.resources.memoryMib = mib;
    return this;
  }

  /**
   * Ask for this deadline per call, within the operator's maximum. It is
   * wall-clock time: on a busy host a call gets less CPU within it.
   */
  deadline(ms) {
    this.manifest.resources.deadlineMs = ms;
    return this;
  }

  /**
   * How many instances may run calls at once. By default the host runs one
   * per core, in parallel, each with its own memory: fields of the plugin
   * and module variables are then per instance. With 1, every call runs on
   * one instance, one at a time, in delivery order, so state kept in the
   * plugin is consistent (until the instance is replaced after a trap or a
   * reload).
   */
  instances(n) {
    this.manifest.resources.instances = n;
    return this;
  }

  /**
   * Where to keep the plugin's store (`state`): "memory" (the default; lost
   * when the host stops) or "durable" (in the cluster), and quotas other
   * than the host's defaults, within the operator's maximum.
   */
  state(tier = "memory", { maxKeys, maxValueBytes, maxTotalBytes } = {}) {
    this.manifest.state = {
      tier: check(STATE_TIERS, tier, "state tier"),
      maxKeys,
      maxValueBytes,
      maxTotalBytes: maxTotalBytes === undefined ? undefined : BigInt(maxTotalBytes),
    };
    return this;
  }
}

const toJson = (value) => (typeof value === "string" ? value : JSON.stringify(value));
const patchOf = (target, patch) => ({ target: ObjectRef.of(target).toWit(), patch: toJson(patch) });
const enqueue = (tag, val) => hostCall(witActions.enqueue, { tag, val });

/**
 * Actions: changes the host makes to the cluster after `handle` returns.
 * Each enqueues at once and throws an `InformantError` if the host refuses.
 * A target is an `ObjectRef` or an object.
 */
export const action = {
  /** Server-side apply of `object`; `force` takes fields other managers own. */
  apply(object, { force = false } = {}) {
    enqueue("apply", { object: toJson(object), force });
  },
  /** Create `object`; an existing object is left alone. */
  create(object) {
    enqueue("create", toJson(object));
  },
  /** A JSON merge patch (RFC 7386). */
  mergePatch(target, patch) {
    enqueue("merge-patch", patchOf(target, patch));
  },
  /** A JSON patch (RFC 6902): a list of operations. */
  jsonPatch(target, operations) {
    enqueue("json-patch", patchOf(target, operations));
  },
  /** A merge patch of the status subresource. */
  patchStatus(target, patch) {
    enqueue("patch-status", patchOf(target, patch));
  },
  /** Delete `target`, only if it still has `uid` / `resourceVersion` when given. */
  delete(target, { uid, resourceVersion } = {}) {
    enqueue("delete", { target: ObjectRef.of(target).toWit(), uid, resourceVersion });
  },
  /** A Kubernetes Event about `regarding`; needs `Manifest.events()`. */
  event(regarding, reason, message, { action: what, warning = false } = {}) {
    enqueue("emit-event", {
      regarding: ObjectRef.of(regarding).toWit(),
      severity: warning ? "warning" : "normal",
      reason,
      message,
      action: what ?? reason,
    });
  },
  /** Deliver `target` again as a "resync" event after `delayMs`. */
  requeueAfter(target, delayMs) {
    enqueue("requeue-after", { target: ObjectRef.of(target).toWit(), delayMs: BigInt(Math.round(delayMs)) });
  },
};

const objects = (texts) => texts.map((t) => KubeObject.parse(t));
const refs = (list) => list.map((r) => ObjectRef.fromWit(r));

/**
 * Read access to the host's cache. Only kinds the plugin subscribes to or
 * declares with `Manifest.reads` can be read.
 */
export const cache = {
  /** One object, or `undefined` if it is not in the cache. */
  get(apiVersion, kind, name, namespace = undefined) {
    const text = hostCall(witCache.get, new ObjectRef(apiVersion, kind, name, namespace).toWit());
    return text == null ? undefined : KubeObject.parse(text);
  },
  /** The objects of a kind, ordered by namespace and name. */
  list(apiVersion, kind, { namespace, labelSelector } = {}) {
    return objects(hostCall(witCache.list, apiVersion, kind, namespace, labelSelector));
  },
  /** Like `list`, but only the references: cheap. */
  listKeys(apiVersion, kind, { namespace, labelSelector } = {}) {
    return refs(hostCall(witCache.listKeys, apiVersion, kind, namespace, labelSelector));
  },
  /** The objects whose index `index` has the key `value`. */
  byIndex(index, value) {
    return objects(hostCall(witCache.byIndex, index, value));
  },
  /** Like `byIndex`, but only the references. */
  byIndexKeys(index, value) {
    return refs(hostCall(witCache.byIndexKeys, index, value));
  },
  /** Every key present in the index, sorted. */
  indexValues(index) {
    return hostCall(witCache.indexValues, index);
  },
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const encode = (value) => encoder.encode(JSON.stringify(value));
const decode = (bytes) => JSON.parse(decoder.decode(bytes));
const ttlOf = (ttlMs) => (ttlMs === undefined ? undefined : BigInt(Math.max(1, Math.round(ttlMs))));
/** A 64-bit integer from the host: a number when it is safe as one. */
const int64 = (n) => (Number.isSafeInteger(Number(n)) ? Number(n) : n);

/**
 * The plugin's own key-value store, kept by the host, used like a `Map`
 * whose values are kept as JSON:
 *
 *     const key = `restarts/${event.object.ref()}`;
 *     if (!state.has(key)) state.set(key, 0, { ttlMs: 3_600_000 });
 *     if (state.increment(key) > 3) return; // over budget this hour
 *
 * The guarantees: one store per plugin, shared by all its instances, kept
 * across instance recycling and hot reload. Writes take effect only if
 * `handle` returns normally, like actions; throwing, a trap or a timeout
 * leaves the store as it was, and reads see the call's own writes. A call
 * whose reads another instance changed before it committed runs again with
 * the same event (its actions from the first run are dropped), so
 * `increment`, `compareAndSwap` and a read followed by a write are atomic
 * across instances; calls that only read never run again. The tier
 * (`Manifest.state`) is "memory" (the default; lost when the host stops) or
 * "durable" (kept in the cluster; with leader election only the leader's
 * writes count). Quotas on keys, value size and total bytes refuse a write
 * with an `InformantError` whose code is "limit-exceeded". Keys are 1-512
 * bytes; `init` cannot use the store, `handle` can.
 */
export const state = {
  /** The value of `key`, or `undefined` if it does not exist. */
  get(key) {
    const bytes = hostCall(witState.get, key);
    return bytes == null ? undefined : decode(bytes);
  },
  /** Set `key` to `value` (as JSON); with `ttlMs`, it expires that long after the call commits. */
  set(key, value, { ttlMs } = {}) {
    hostCall(witState.set, key, encode(value), ttlOf(ttlMs));
    return this;
  },
  /** Whether `key` exists. */
  has(key) {
    return hostCall(witState.exists, key);
  },
  /** Remove `key`; returns whether it existed, as `Map.delete` does. */
  delete(key) {
    const had = hostCall(witState.exists, key);
    if (had) hostCall(witState.delete, key);
    return had;
  },
  /** The raw bytes of `key` (a `Uint8Array`), or `undefined`. */
  getBytes(key) {
    return hostCall(witState.get, key) ?? undefined;
  },
  /** Set `key` to raw bytes. */
  setBytes(key, bytes, { ttlMs } = {}) {
    hostCall(witState.set, key, bytes, ttlOf(ttlMs));
    return this;
  },
  /** `{ value, version }` of `key`, for `compareAndSwap`, or `undefined`. */
  getVersioned(key) {
    const found = hostCall(witState.getVersioned, key);
    return found == null ? undefined : { value: decode(found.value), version: found.version };
  },
  /** Set `key` only if its version is still `expected` (`undefined`: only if absent). */
  compareAndSwap(key, expected, value, { ttlMs } = {}) {
    return hostCall(witState.compareAndSwap, key, expected ?? undefined, encode(value), ttlOf(ttlMs));
  },
  /** Add `delta` to the integer at `key` (0 if absent) and return the sum. */
  increment(key, delta = 1) {
    return int64(hostCall(witState.increment, key, BigInt(delta)));
  },
  /** The values of several keys (`undefined` where absent), in order. */
  getMany(keys) {
    return hostCall(witState.getMany, [...keys]).map((b) => (b == null ? undefined : decode(b)));
  },
  /** Set several keys, all or none: an object, a `Map` or `[key, value]` pairs. */
  setMany(entries, { ttlMs } = {}) {
    const pairs = entries instanceof Map || Array.isArray(entries) ? [...entries] : Object.entries(entries);
    hostCall(witState.setMany, pairs.map(([k, v]) => [k, encode(v)]), ttlOf(ttlMs));
  },
  /** Remove several keys. */
  deleteMany(keys) {
    hostCall(witState.deleteMany, [...keys]);
  },
  /** Every key that starts with `prefix`, in byte order, a page at a time. */
  *keys(prefix = "") {
    let cursor;
    do {
      const page = hostCall(witState.listKeys, prefix, cursor, 0);
      yield* page.keys;
      cursor = page.cursor ?? undefined;
    } while (cursor !== undefined);
  },
  /** `[key, value]` for every key that starts with `prefix`. */
  *entries(prefix = "") {
    for (const key of this.keys(prefix)) {
      const value = this.get(key);
      if (value !== undefined) yield [key, value];
    }
  },
  [Symbol.iterator]() {
    return this.entries();
  },
};

/** Logging into the host's structured log, tagged with the plugin's name. */
export const log = {
  trace: (message) => witLog("trace", String(message)),
  debug: (message) => witLog("debug", String(message)),
  info: (message) => witLog("info", String(message)),
  warn: (message) => witLog("warn", String(message)),
  error: (message) => witLog("error", String(message)),
};

/**
 * Subclass this once per plugin module and export the class as default.
 * `describe()` runs on a fresh instance and must not depend on settings;
 * `init(settings)` gets the parsed settings (`null` when none were given);
 * `handle(event)` gets each `Event`. An instance serves many calls, but the
 * host runs several at once (one per core), each with its own fields, and
 * replaces them after a trap, a reload or a call that grew their memory:
 * fields are a per-instance cache. `Manifest.instances(1)` runs every call on
 * one instance, in order.
 */
export class Plugin {
  describe() {
    throw new Error(`${this.constructor.name} must define describe()`);
  }

  init(settings) {
    this.settings = settings;
  }

  handle(_event) {
    throw new Error(`${this.constructor.name} must define handle(event)`);
  }
}

/** What a thrown value becomes on the wire: the contract's `error` record. */
function witError(e) {
  if (e instanceof InformantError) return { code: e.code, message: e.message };
  // Anything else is a bug in the plugin: keep where it happened.
  const where = e && e.stack ? `\n${e.stack}` : "";
  const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return { code: "failed", message: `${what}${where}` };
}

/** The contract's exports for a `Plugin` subclass; the build script calls this. */
export function exportPlugin(PluginClass) {
  if (typeof PluginClass !== "function" || !(PluginClass.prototype instanceof Plugin)) {
    throw new TypeError("the plugin module's default export must be a subclass of Plugin");
  }
  let instance = null;
  return {
    describe() {
      return new PluginClass().describe().manifest;
    },
    init(settings) {
      try {
        const plugin = new PluginClass();
        plugin.init(settings ? JSON.parse(settings) : null);
        instance = plugin;
      } catch (e) {
        throw witError(e);
      }
    },
    handle(event) {
      try {
        if (instance === null) throw new InformantError("handle before init");
        instance.handle(new Event(event));
      } catch (e) {
        throw witError(e);
      }
    },
  };
}
