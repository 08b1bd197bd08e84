// label-enforcer, in JavaScript: the twin of plugins/label-enforcer.
//
// Every ConfigMap and Deployment carries the labels the platform team
// requires, with values from an allowed set:
// - a missing required label is added with its default, by a merge patch;
// - a label whose value is not allowed is reset to the first allowed value,
//   by a JSON patch guarded with a `test` operation, so that a concurrent
//   change by someone else is never overwritten;
// - namespaces labelled informant.dev/enforce-labels=disabled are skipped.
//
// Settings (all optional):
//   {"required": {"owner": "unassigned"},
//    "allowed": {"env": ["dev", "staging", "prod"]},
//    "ignoreNamespaces": ["kube-system"]}

import { InformantError, Manifest, Plugin, Subscription, action, cache, log } from "informant";

const EVENTS = ["added", "modified", "resync"];
const DEFAULTS = {
  required: { owner: "unassigned" },
  allowed: {},
  ignoreNamespaces: ["kube-system", "kube-public", "kube-node-lease"],
};

/** A label key as one JSON pointer step (RFC 6901). */
const pointerEscape = (key) => key.replaceAll("~", "~0").replaceAll("/", "~1");

export default class LabelEnforcer extends Plugin {
  describe() {
    return new Manifest("label-enforcer", "0.1.0")
      .subscribe(new Subscription("v1", "ConfigMap", { events: EVENTS, latestState: true }))
      .subscribe(new Subscription("apps/v1", "Deployment", { events: EVENTS, latestState: true }))
      .reads("v1", "Namespace")
      .writes("v1", "ConfigMap", ["patch"])
      .writes("apps/v1", "Deployment", ["patch"]);
  }

  init(settings) {
    const unknown = Object.keys(settings ?? {}).filter((k) => !(k in DEFAULTS));
    if (unknown.length > 0) {
      throw new InformantError(`unknown settings ${unknown.join(", ")}; known: ${Object.keys(DEFAULTS).join(", ")}`, "invalid");
    }
    this.config = { ...DEFAULTS, ...settings };
    for (const [key, values] of Object.entries(this.config.allowed)) {
      if (values.length === 0) throw new InformantError(`allowed.${key} lists no value`, "invalid");
    }
  }

  handle(event) {
    const obj = event.object;
    const namespace = obj.namespace;
    if (namespace === undefined || this.config.ignoreNamespaces.includes(namespace)) return;
    const ns = cache.get("v1", "Namespace", namespace);
    if (ns?.label("informant.dev/enforce-labels") === "disabled") {
      log.debug(`${obj.ref()} skipped: its namespace opts out`);
      return;
    }

    const missing = Object.fromEntries(
      Object.entries(this.config.required).filter(([key]) => obj.label(key) === undefined),
    );
    if (Object.keys(missing).length > 0) {
      log.info(`${obj.ref()}: adding labels ${JSON.stringify(missing)}`);
      action.mergePatch(obj, { metadata: { labels: missing } });
    }

    const operations = [];
    for (const [key, allowed] of Object.entries(this.config.allowed)) {
      const value = obj.label(key);
      if (value !== undefined && !allowed.includes(value)) {
        const path = `/metadata/labels/${pointerEscape(key)}`;
        log.info(`${obj.ref()}: label ${key}=${value} is not allowed; resetting it to ${allowed[0]}`);
        operations.push({ op: "test", path, value }, { op: "replace", path, value: allowed[0] });
      }
    }
    if (operations.length > 0) action.jsonPatch(obj, operations);
  }
}
