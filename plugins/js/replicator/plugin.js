// replicator, in JavaScript: the twin of plugins/replicator.
//
// Copies every ConfigMap and Secret labelled informant.dev/replicate=true into
// every other namespace, including namespaces created later, and removes the
// copies when the source goes. Copies are applied server-side, so re-running
// is harmless; they carry the label informant.dev/replica=true and the
// annotation informant.dev/replicated-from: <namespace>/<name>.
//
// Settings (optional): {"excludeNamespaces": ["kube-system"]}

import { InformantError, Manifest, ObjectRef, Plugin, Subscription, action, cache, log } from "informant";

const SELECTOR = "informant.dev/replicate=true";
const SOURCE_KINDS = ["ConfigMap", "Secret"];
const COPIED_FIELDS = ["data", "binaryData", "stringData", "type", "immutable"];

/** The copy of `source` for `namespace`: only what the replicator owns. */
function copyOf(source, namespace) {
  const copy = {
    apiVersion: "v1",
    kind: source.kind,
    metadata: {
      name: source.name,
      namespace,
      labels: { "informant.dev/replica": "true" },
      annotations: { "informant.dev/replicated-from": `${source.namespace ?? ""}/${source.name}` },
    },
  };
  for (const field of COPIED_FIELDS) {
    if (source[field] !== undefined) copy[field] = source[field];
  }
  return copy;
}

export default class Replicator extends Plugin {
  describe() {
    const manifest = new Manifest("replicator", "0.1.0");
    for (const kind of SOURCE_KINDS) {
      manifest
        .subscribe(new Subscription("v1", kind, {
          labelSelector: SELECTOR,
          events: ["added", "modified", "deleted", "resync"],
        }))
        .writes("v1", kind, ["apply", "delete"]);
    }
    return manifest.subscribe(new Subscription("v1", "Namespace", { events: ["added"] }));
  }

  init(settings) {
    const { excludeNamespaces = ["kube-system", "kube-public", "kube-node-lease"], ...rest } = settings ?? {};
    if (Object.keys(rest).length > 0) {
      throw new InformantError(`unknown settings ${Object.keys(rest).join(", ")}; known: excludeNamespaces`, "invalid");
    }
    this.exclude = new Set(excludeNamespaces);
  }

  /** Every namespace a copy of an object in `sourceNamespace` belongs in. */
  targets(sourceNamespace) {
    return cache
      .listKeys("v1", "Namespace")
      .map((ref) => ref.name)
      .filter((ns) => ns !== sourceNamespace && !this.exclude.has(ns));
  }

  replicate(source, namespaces) {
    for (const ns of namespaces) action.apply(copyOf(source, ns));
    if (namespaces.length > 0) log.info(`${source.ref()}: applied ${namespaces.length} copies`);
  }

  handle(event) {
    const obj = event.object;
    if (obj.kind === "Namespace") {
      // Sources already present are replicated by their own initial events;
      // a namespace created later needs every source.
      if (event.initial || this.exclude.has(obj.name)) return;
      for (const kind of SOURCE_KINDS) {
        for (const source of cache.list("v1", kind, { labelSelector: SELECTOR })) {
          if (source.namespace !== obj.name) this.replicate(source, [obj.name]);
        }
      }
      return;
    }
    const targets = this.targets(obj.namespace);
    if (event.type === "deleted") {
      for (const ns of targets) action.delete(new ObjectRef("v1", obj.kind, obj.name, ns));
      log.info(`${obj.ref()}: deleted; removing ${targets.length} copies`);
    } else {
      this.replicate(obj, targets);
    }
  }
}
