"""sdk-tour: a test fixture that calls every function of the Python SDK and
reports what it saw through the actions it enqueues, so that a replay shows
the SDK's whole surface. Its JavaScript twin (plugins/testing/js-sdk-tour)
does the same and must produce the same actions."""

from informant import Error, Manifest, ObjectRef, Plugin, Subscription, action, cache, log, state


def code_of(call):
    """The error code a host call raises, or "ok"."""
    try:
        call()
        return "ok"
    except Error as e:
        return e.code


class Tour(Plugin):
    def describe(self):
        return (
            Manifest("sdk-tour", "1.2.3")
            .subscribe(Subscription("v1", "ConfigMap", namespace="tour", label_selector="tour",
                                    events=["added", "modified", "deleted"], old_object=True,
                                    resync_seconds=30))
            .subscribe(Subscription("v1", "Namespace", field_selector="metadata.name=tour",
                                    events=["added"], latest_state=True, fields=["metadata.labels"]))
            .index("by-app", "v1", "ConfigMap", ["metadata.labels.app"])
            .reads("v1", "Secret")
            .writes("v1", "ConfigMap", ["apply", "create", "patch", "patch-status", "delete"])
            .events()
            .memory(48)
            .deadline(100)
        )

    def init(self, settings):
        self.prefix = (settings or {}).get("prefix", "seen")
        # A hostile mode, for the sandbox tests: "spin" or "hog".
        self.mode = (settings or {}).get("mode")

    def state_tour(self, name, event_type):
        """Every call of the store; what it saw, as text."""
        seen_before = f"last/{name}" in state
        state[f"last/{name}"] = {"type": event_type}
        before = state.get_versioned("calls")
        calls = state.increment("calls")
        state.set("short", [1, 2], ttl=60)
        state.set_many({"a/1": 1, "a/2": {"two": 2}})
        state.delete_many(["a/1"])
        state.set_bytes("raw", b"\x00\xff")
        return {
            "state-calls": str(calls),
            "state-seen-before": str(seen_before).lower(),
            "state-last": state[f"last/{name}"]["type"],
            "state-versioned": "none" if before is None else str(before[0] + 1 == calls and before[1] != "").lower(),
            "state-cas-stale": str(state.compare_and_swap("calls", "not-a-version", 0)).lower(),
            "state-cas-absent": str(state.compare_and_swap(f"once/{name}", None, name)).lower(),
            "state-many": ",".join("none" if v is None else str(v) for v in state.get_many(["calls", "missing"])),
            "state-keys": ",".join(state.list_keys("a/")),
            "state-default": str(state.get("missing", "fallback")),
            "state-raw": (state.get_bytes("raw") or b"").hex(),
            "state-deleted": str(state.get("a/1")),
            "state-big": code_of(lambda: state.set_bytes("big", b"x" * (1 << 20))),
            "state-bad-key": code_of(lambda: state.get("")),
            "state-not-integer": code_of(lambda: state.increment("short")),
        }

    def handle(self, event):
        if self.mode == "spin":
            while True:
                pass
        if self.mode == "hog":
            # Steps larger than the cap: the first one is refused without
            # touching a page, so the test is about the cap, not about how
            # fast a busy machine zeroes memory before the deadline.
            chunks = []
            while True:
                chunks.append(bytearray(64 << 20))
        obj = event.object
        if event.type == "deleted":
            action.delete(obj, uid=obj.uid, resource_version=obj.resource_version)
            return
        if obj.kind == "Namespace":
            action.event(obj, "Toured", f"namespace {obj.name}", action="Look", warning=True)
            return
        ns = cache.get("v1", "Namespace", obj.namespace)
        app = obj.label("app")
        report = {
            "type": event.type,
            "initial": str(event.initial).lower(),
            "old": "none" if event.old_object is None else event.old_object.resource_version,
            "ref": str(obj.ref),
            "first-item": str(obj.get("data.items", "")).split(",")[0],
            "missing-path": str(obj.get("spec.nothing.0", "default")),
            "namespace-team": ns.label("team") if ns is not None else "no namespace",
            "annotation": obj.annotation("note") or "none",
            "list": ",".join(o.name for o in cache.list("v1", "ConfigMap", namespace="tour", label_selector="tour")),
            "list-keys": ",".join(str(r) for r in cache.list_keys("v1", "ConfigMap", label_selector="app")),
            "by-index": ",".join(o.name for o in cache.by_index("by-app", app)) if app else "",
            "by-index-keys": ",".join(r.name for r in cache.by_index_keys("by-app", app or "none")),
            "index-values": ",".join(cache.index_values("by-app")),
            "secret": cache.get("v1", "Secret", "token", "tour").get("type"),
            "forbidden-read": code_of(lambda: cache.list("apps/v1", "Deployment")),
            "unknown-index": code_of(lambda: cache.by_index("nope", "x")),
            "forbidden-write": code_of(lambda: action.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "tour"}})),
        }
        report.update(self.state_tour(obj.name, event.type))
        log.info(f"{obj.ref}: {report}")
        log.debug("debug line")
        action.apply({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": f"{self.prefix}-{obj.name}", "namespace": "tour"},
                      "data": report}, force=True)
        action.create({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": f"created-{obj.name}", "namespace": "tour"}})
        action.merge_patch(obj, {"metadata": {"labels": {"toured": "yes"}}})
        action.json_patch(ObjectRef("v1", "ConfigMap", obj.name, "tour"),
                          [{"op": "add", "path": "/metadata/annotations", "value": {"toured": "yes"}}])
        action.patch_status(obj, {"status": {"toured": True}})
        action.requeue_after(obj, 1500)
        if obj.name == "fail":
            raise Error("asked to fail", "limit-exceeded")
