// sdk-tour: a test fixture that calls every function of the JavaScript SDK
// and reports what it saw through the actions it enqueues, so that a replay
// shows the SDK's whole surface. Its Python twin
// (plugins/testing/python-sdk-tour) does the same and must produce the same
// actions.

import { InformantError, Manifest, ObjectRef, Plugin, Subscription, action, cache, log, state } from "informant";

/** The error code a host call throws, or "ok". */
function codeOf(call) {
  try {
    call();
    return "ok";
  } catch (e) {
    if (e instanceof InformantError) return e.code;
    throw e;
  }
}

export default class Tour extends Plugin {
  describe() {
    return new Manifest("sdk-tour", "1.2.3")
      .subscribe(new Subscription("v1", "ConfigMap", {
        namespace: "tour", labelSelector: "tour", events: ["added", "modified", "deleted"],
        oldObject: true, resyncSeconds: 30,
      }))
      .subscribe(new Subscription("v1", "Namespace", {
        fieldSelector: "metadata.name=tour", events: ["added"], latestState: true,
        fields: ["metadata.labels"],
      }))
      .index("by-app", "v1", "ConfigMap", ["metadata.labels.app"])
      .reads("v1", "Secret")
      .writes("v1", "ConfigMap", ["apply", "create", "patch", "patch-status", "delete"])
      .events()
      .memory(48)
      .deadline(100);
  }

  init(settings) {
    this.prefix = settings?.prefix ?? "seen";
    // A hostile mode, for the sandbox tests: "spin" or "hog".
    this.mode = settings?.mode;
  }

  /** Every call of the store; what it saw, as text. */
  stateTour(name, type) {
    const seenBefore = state.has(`last/${name}`);
    state.set(`last/${name}`, { type });
    const before = state.getVersioned("calls");
    const calls = state.increment("calls");
    state.set("short", [1, 2], { ttlMs: 60_000 });
    state.setMany({ "a/1": 1, "a/2": { two: 2 } });
    state.deleteMany(["a/1"]);
    state.setBytes("raw", new Uint8Array([0, 255]));
    const hex = (bytes) => [...(bytes ?? [])].map((b) => b.toString(16).padStart(2, "0")).join("");
    return {
      "state-calls": String(calls),
      "state-seen-before": String(seenBefore),
      "state-last": state.get(`last/${name}`).type,
      "state-versioned": before === undefined ? "none" : String(before.value + 1 === calls && before.version !== ""),
      "state-cas-stale": String(state.compareAndSwap("calls", "not-a-version", 0)),
      "state-cas-absent": String(state.compareAndSwap(`once/${name}`, undefined, name)),
      "state-many": state.getMany(["calls", "missing"]).map((v) => (v === undefined ? "none" : String(v))).join(","),
      "state-keys": [...state.keys("a/")].join(","),
      "state-default": String(state.get("missing") ?? "fallback"),
      "state-raw": hex(state.getBytes("raw")),
      "state-deleted": String(state.get("a/1") ?? "None"),
      "state-big": codeOf(() => state.setBytes("big", new Uint8Array(1 << 20))),
      "state-bad-key": codeOf(() => state.get("")),
      "state-not-integer": codeOf(() => state.increment("short")),
    };
  }

  handle(event) {
    if (this.mode === "spin") for (;;);
    if (this.mode === "hog") {
      // Steps larger than the cap: the first one is refused without touching
      // a page, so the test is about the cap, not about how fast a busy
      // machine zeroes memory before the deadline.
      const chunks = [];
      for (;;) chunks.push(new Uint8Array(64 << 20));
    }
    const obj = event.object;
    if (event.type === "deleted") {
      action.delete(obj, { uid: obj.uid, resourceVersion: obj.resourceVersion });
      return;
    }
    if (obj.kind === "Namespace") {
      action.event(obj, "Toured", `namespace ${obj.name}`, { action: "Look", warning: true });
      return;
    }
    const ns = cache.get("v1", "Namespace", obj.namespace);
    const app = obj.label("app");
    const report = {
      type: event.type,
      initial: String(event.initial),
      old: event.oldObject === undefined ? "none" : event.oldObject.resourceVersion,
      ref: String(obj.ref()),
      "first-item": String(obj.get("data.items") ?? "").split(",")[0],
      "missing-path": String(obj.get("spec.nothing.0") ?? "default"),
      "namespace-team": ns !== undefined ? ns.label("team") : "no namespace",
      annotation: obj.annotation("note") ?? "none",
      list: cache.list("v1", "ConfigMap", { namespace: "tour", labelSelector: "tour" }).map((o) => o.name).join(","),
      "list-keys": cache.listKeys("v1", "ConfigMap", { labelSelector: "app" }).map(String).join(","),
      "by-index": app ? cache.byIndex("by-app", app).map((o) => o.name).join(",") : "",
      "by-index-keys": cache.byIndexKeys("by-app", app ?? "none").map((r) => r.name).join(","),
      "index-values": cache.indexValues("by-app").join(","),
      secret: cache.get("v1", "Secret", "token", "tour").get("type"),
      "forbidden-read": codeOf(() => cache.list("apps/v1", "Deployment")),
      "unknown-index": codeOf(() => cache.byIndex("nope", "x")),
      "forbidden-write": codeOf(() => action.create({ apiVersion: "v1", kind: "Pod", metadata: { name: "p", namespace: "tour" } })),
      ...this.stateTour(obj.name, event.type),
    };
    log.info(`${obj.ref()}: ${JSON.stringify(report)}`);
    log.debug("debug line");
    action.apply({
      apiVersion: "v1", kind: "ConfigMap",
      metadata: { name: `${this.prefix}-${obj.name}`, namespace: "tour" },
      data: report,
    }, { force: true });
    action.create({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: `created-${obj.name}`, namespace: "tour" } });
    action.mergePatch(obj, { metadata: { labels: { toured: "yes" } } });
    action.jsonPatch(new ObjectRef("v1", "ConfigMap", obj.name, "tour"),
      [{ op: "add", path: "/metadata/annotations", value: { toured: "yes" } }]);
    action.patchStatus(obj, { status: { toured: true } });
    action.requeueAfter(obj, 1500);
    if (obj.name === "fail") throw new InformantError("asked to fail", "limit-exceeded");
  }
}
