// Type declarations for the Informant JavaScript SDK (`informant.js`), for
// editors and for plugins written in TypeScript. They describe the module as
// plugins import it: `import { Plugin, Manifest, ... } from "informant"`.
// The tests check them with `tsc --strict`.

/** The codes of the contract's `error`: what the host or the plugin says went wrong. */
export type ErrorCode = "invalid" | "forbidden" | "limit-exceeded" | "not-found" | "failed";

/** What happened to an object. */
export type EventType = "added" | "modified" | "deleted" | "synced" | "resync";

/** What a plugin may do to a kind of object. */
export type Verb = "apply" | "create" | "patch" | "patch-status" | "delete";

/** An error with a code: thrown by the host's calls, or by the plugin. */
export class InformantError extends Error {
  constructor(message: string, code?: ErrorCode);
  readonly code: ErrorCode;
}

/** Names one object. */
export class ObjectRef {
  constructor(apiVersion: string, kind: string, name: string, namespace?: string);
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string | undefined;
  /** An `ObjectRef` from an `ObjectRef`, a `KubeObject` or a plain object with metadata. */
  static of(target: Target): ObjectRef;
}

/** Anything that names an object: a reference, or the object itself. */
export type Target = ObjectRef | KubeObject | { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } };

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * A Kubernetes object: the parsed JSON itself (`obj.metadata.name`,
 * `obj.spec`), with helpers. A field of the object with the name of a
 * helper hides the helper.
 */
export class KubeObject {
  static parse(text: string): KubeObject;
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [field: string]: Json | undefined;
  };
  [field: string]: unknown;
  /** A value by dotted path, where a number indexes a list: `get("spec.containers.0.image")`. */
  get(path: string): Json | undefined;
  readonly name: string;
  readonly namespace: string | undefined;
  readonly uid: string;
  readonly resourceVersion: string;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  label(key: string): string | undefined;
  annotation(key: string): string | undefined;
  ref(): ObjectRef;
}

/** One event, as `handle` gets it. */
export class Event {
  /** What happened. */
  readonly type: EventType;
  /** The position of the matching subscription in the manifest. */
  readonly subscription: number;
  /** Part of the subscription's initial list, before its `synced` event. */
  readonly initial: boolean;
  /** A delete inferred by a relist: `object` is the last state seen, maybe stale. */
  readonly finalStateUnknown: boolean;
  /** The object; empty for `synced`. */
  readonly object: KubeObject;
  /** The previous state, for `modified`, when the subscription asks for it. */
  readonly oldObject: KubeObject | undefined;
  /** How many earlier events of the object were merged into this one (0: none). */
  readonly merged: number;
  /** The object exists now: added, modified or resynced. */
  readonly isUpsert: boolean;
}

/** Options of a subscription. */
export interface SubscriptionOptions {
  /** Only objects in this namespace. */
  namespace?: string;
  /** A Kubernetes label selector: `app=web,tier in (front,back)`. */
  labelSelector?: string;
  /** A field selector on `metadata.name` and `metadata.namespace`. */
  fieldSelector?: string;
  /** The event types to deliver; none or empty: all of them. */
  events?: EventType[];
  /** Pending events of an object merge into its newest state. */
  latestState?: boolean;
  /** Deliver the previous state with `modified` events. */
  oldObject?: boolean;
  /** Deliver every object again as `resync` this often. */
  resyncSeconds?: number;
  /**
   * The fields the plugin reads (`["metadata.labels", "spec.nodeName"]`), so
   * that the host may keep only those in its cache. Events and cache reads
   * then carry only what is kept; the annotation `informant.dev/projection`
   * says which. None: whole objects.
   */
  fields?: string[];
}

/** A request to receive the events of one kind of object. */
export class Subscription {
  constructor(apiVersion: string, kind: string, options?: SubscriptionOptions);
}

/** The plugin's name, version and needs, built by chaining. */
export class Manifest {
  constructor(name: string, version: string);
  subscribe(subscription: Subscription): this;
  /** An index of `kind` by the values at `fieldPaths`, for `cache.byIndex`. */
  index(name: string, apiVersion: string, kind: string, fieldPaths: string[]): this;
  /** Read `kind` from the cache without subscribing to it. */
  reads(apiVersion: string, kind: string): this;
  /** Write `kind` with these verbs. */
  writes(apiVersion: string, kind: string, verbs: Verb[]): this;
  /** Allow emitting Kubernetes Events. */
  events(): this;
  /** Ask for this much linear memory, within the operator's maximum. */
  memory(mib: number): this;
  /** Ask for this deadline per call (wall-clock time), within the operator's maximum. */
  deadline(ms: number): this;
  /** How many instances may run calls at once; 1 keeps in-memory state consistent. */
  instances(n: number): this;
  /** Where to keep the plugin's store, and quotas other than the host's defaults. */
  state(tier?: StateTier, quotas?: { maxKeys?: number; maxValueBytes?: number; maxTotalBytes?: number }): this;
}

/** Where the plugin's store is kept. */
export type StateTier = "memory" | "durable";

/** Actions, committed only if `handle` returns normally. */
export const action: {
  /** Server-side apply of a whole object (`force` takes fields other managers own). */
  apply(object: object, options?: { force?: boolean }): void;
  /** Create an object; one that exists is left alone. */
  create(object: object): void;
  /** A JSON merge patch (RFC 7386). */
  mergePatch(target: Target, patch: object | string): void;
  /** A JSON patch (RFC 6902): a list of operations. */
  jsonPatch(target: Target, operations: object[] | string): void;
  /** A merge patch of the status subresource. */
  patchStatus(target: Target, patch: object | string): void;
  /** Delete `target`, only if it still has `uid` / `resourceVersion` when given. */
  delete(target: Target, options?: { uid?: string; resourceVersion?: string }): void;
  /** A Kubernetes Event about `regarding`; needs `Manifest.events()`. */
  event(regarding: Target, reason: string, message: string, options?: { action?: string; warning?: boolean }): void;
  /** Deliver `target` again as a `resync` event after `delayMs`. */
  requeueAfter(target: Target, delayMs: number): void;
};

/** Read access to the host's cache of watched objects. */
export const cache: {
  get(apiVersion: string, kind: string, name: string, namespace?: string): KubeObject | undefined;
  list(apiVersion: string, kind: string, options?: { namespace?: string; labelSelector?: string }): KubeObject[];
  listKeys(apiVersion: string, kind: string, options?: { namespace?: string; labelSelector?: string }): ObjectRef[];
  byIndex(index: string, value: string): KubeObject[];
  byIndexKeys(index: string, value: string): ObjectRef[];
  indexValues(index: string): string[];
};

/**
 * The plugin's own store, kept by the host, like a `Map` of JSON values.
 * Writes are committed only if `handle` returns normally; a call whose reads
 * another instance changed before it committed runs again.
 */
export const state: {
  get(key: string): Json | undefined;
  set(key: string, value: Json, options?: { ttlMs?: number }): typeof state;
  has(key: string): boolean;
  delete(key: string): boolean;
  getBytes(key: string): Uint8Array | undefined;
  setBytes(key: string, bytes: Uint8Array, options?: { ttlMs?: number }): typeof state;
  getVersioned(key: string): { value: Json; version: string } | undefined;
  compareAndSwap(key: string, expected: string | undefined, value: Json, options?: { ttlMs?: number }): boolean;
  /** The sum: a number, or a bigint past Number.MAX_SAFE_INTEGER. */
  increment(key: string, delta?: number): number | bigint;
  getMany(keys: Iterable<string>): (Json | undefined)[];
  setMany(entries: Record<string, Json> | Map<string, Json> | [string, Json][], options?: { ttlMs?: number }): void;
  deleteMany(keys: Iterable<string>): void;
  keys(prefix?: string): IterableIterator<string>;
  entries(prefix?: string): IterableIterator<[string, Json]>;
  [Symbol.iterator](): IterableIterator<[string, Json]>;
};

/** Logging into the host's structured log, tagged with the plugin's name. */
export const log: {
  trace(message: unknown): void;
  debug(message: unknown): void;
  info(message: unknown): void;
  warn(message: unknown): void;
  error(message: unknown): void;
};

/**
 * Subclass this once per plugin module and export the class as default.
 * Several instances may run at once, each with its own fields: see
 * `Manifest.instances`.
 */
export class Plugin {
  /** The manifest; must not depend on settings. */
  describe(): Manifest;
  /** The parsed settings (`null` when none were given). */
  init(settings: Json): void;
  /** One event; throw to fail the call and discard its actions. */
  handle(event: Event): void;
  /** What `init` was given, unless the subclass keeps it otherwise. */
  settings?: Json;
}

/** The contract's exports for a `Plugin` subclass; the build script calls this. */
export function exportPlugin(PluginClass: new () => Plugin): unknown;
