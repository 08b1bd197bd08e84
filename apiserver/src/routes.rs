//! The HTTP surface of the embedded API server.

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};
use sha2::{Digest, Sha512};

use crate::{
    App, LoggedRequest,
    admission::{Attributes, Operation, Webhooks},
    discovery_documents, openapi,
    patch::{self, Ownership},
    protobuf,
    registry::ResourceType,
    status::{StatusError, json_response},
    storage::WriteOptions,
    watch::{self, WatchParams},
};
use informant_k8s::selector::{FieldSelector, LabelSelector};

/// The request body limit of the real apiserver.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// The router.
pub fn router(app: Arc<App>) -> Router {
    let mut router = Router::new()
        .route("/version", get(version))
        .route("/api", get(api))
        .route("/apis", get(apis))
        .route("/openapi/v3", get(openapi_index))
        .route("/openapi/v3/{*gv}", get(openapi_group_version))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }));
    if app.config.fault_endpoint {
        router = router.route("/informant/faults", post(faults));
    }
    router
        .fallback(resource)
        .layer(middleware::from_fn_with_state(app.clone(), intercept))
        .with_state(app)
}

/// Log, delay and fail requests as the fault switches say.
async fn intercept(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    app.log.lock().push(LoggedRequest {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
    });
    let latency = app.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if path != "/informant/faults" {
        match app.faults.take_failure(&method, &path, &query) {
            Some(429) => return StatusError::too_many_requests().into_response(),
            Some(code) => {
                let mut e = StatusError::internal("injected failure");
                e.code = code;
                return e.into_response();
            }
            None => {}
        }
    }
    next.run(request).await
}

async fn version() -> Response {
    let body = serde_json::to_string_pretty(&discovery_documents::version()).unwrap_or_default();
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn discovery_response(
    headers: &HeaderMap,
    aggregated: impl FnOnce() -> Value,
    legacy: impl FnOnce() -> Value,
) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    match discovery_documents::wants(accept) {
        discovery_documents::Wants::Legacy => json_response(StatusCode::OK, &legacy()),
        discovery_documents::Wants::Unsupported => {
            StatusError::not_acceptable("only the following media types are accepted: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList").into_response()
        }
        discovery_documents::Wants::Aggregated => {
            let mut body = aggregated().to_string();
            body.push('\n');
            let etag = format!("\"{}\"", hex_upper(&Sha512::digest(body.as_bytes())));
            if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
                return StatusCode::NOT_MODIFIED.into_response();
            }
            let mut r = body.into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(discovery_documents::AGGREGATED));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public"));
            h.insert(header::VARY, HeaderValue::from_static("Accept"));
            if let Ok(v) = HeaderValue::from_str(&etag) {
                h.insert(header::ETAG, v);
            }
            r
        }
    }
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

async fn api(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let registry = app.store.registry();
    discovery_response(
        &headers,
        || discovery_documents::aggregated(&registry, true),
        || discovery_documents::api_versions(&app.address()),
    )
}

async fn apis(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let registry = app.store.registry();
    discovery_response(
        &headers,
        || discovery_documents::aggregated(&registry, false),
        || discovery_documents::api_group_list(&registry),
    )
}

async fn openapi_index(State(app): State<Arc<App>>) -> Response {
    let mut r = openapi::index(&app.store.registry())
        .to_string()
        .into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    r
}

async fn openapi_group_version(
    State(app): State<Arc<App>>,
    axum::extract::Path(gv): axum::extract::Path<String>,
) -> Response {
    let Some(doc) = openapi::group_version(&app.store.registry(), &gv) else {
        return StatusError::page_not_found().into_response();
    };
    let etag = format!("\"{}\"", openapi::hash(&doc));
    let mut r = doc.to_string().into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, immutable"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    r
}

async fn faults(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let Ok(cmd) = serde_json::from_slice::<Value>(&body) else {
        return StatusError::bad_request("fault command must be JSON").into_response();
    };
    match cmd.get("action").and_then(Value::as_str) {
        Some("dropWatches") => app.faults.drop_watches(),
        Some("compact") => app.store.compact(),
        Some("stall") => app
            .faults
            .set_stall(cmd.get("enabled").and_then(Value::as_bool).unwrap_or(true)),
        Some("latency") => app.faults.set_latency(Duration::from_millis(
            cmd.get("ms").and_then(Value::as_u64).unwrap_or(0),
        )),
        Some("fail") => {
            match serde_json::from_value(cmd.get("rule").cloned().unwrap_or(Value::Null)) {
                Ok(rule) => app.faults.fail(rule),
                Err(e) => {
                    return StatusError::bad_request(format!("bad fail rule: {e}")).into_response();
                }
            }
        }
        Some("staleCache") => app.faults.set_stale_cache(
            cmd.get("enabled")
                .and_then(Value::as_bool)
                .unwrap_or(true)
                .then(|| app.store.freeze()),
        ),
        Some("reset") => app.faults.reset(),
        other => {
            return StatusError::bad_request(format!("unknown fault action {other:?}"))
                .into_response();
        }
    }
    json_response(StatusCode::OK, &json!({"ok": true}))
}

/// Query parameters, tolerant of the empty first parameter kube-rs sends (`?&limit=500`).
fn query(request_query: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(request_query.unwrap_or("").as_bytes())
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Where a resource request points.
struct Target {
    t: Arc<ResourceType>,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn route(app: &App, path: &str) -> Result<Result<Target, (String, String)>, StatusError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        ["apis", g] => return Ok(Err(((*g).to_string(), String::new()))),
        _ => return Err(StatusError::page_not_found()),
    };
    let registry = app.store.registry();
    if !group.is_empty() && !registry.has_group(group) {
        return Err(StatusError::page_not_found());
    }
    if rest.is_empty() {
        return Ok(Err((group.to_string(), version.to_string())));
    }
    let find = |plural: &str| {
        registry
            .get(group, version, plural)
            .ok_or_else(StatusError::resource_not_found)
    };
    let target = match rest {
        ["namespaces", ns, plural, tail @ ..] if registry.get(group, version, plural).is_some() => {
            let t = find(plural)?;
            if !t.namespaced {
                return Err(StatusError::resource_not_found());
            }
            let (name, sub) = match tail {
                [] => (None, None),
                [name] => (Some(*name), None),
                [name, sub] => (Some(*name), Some(*sub)),
                _ => return Err(StatusError::resource_not_found()),
            };
            Target {
                t,
                namespace: Some((*ns).to_string()),
                name: name.map(str::to_string),
                subresource: sub.map(str::to_string),
            }
        }
        [plural, tail @ ..] => {
            let t = find(plural)?;
            let (name, sub) = match tail {
                [] => (None, None),
                [name] => (Some(*name), None),
                [name, sub] => (Some(*name), Some(*sub)),
                _ => return Err(StatusError::resource_not_found()),
            };
            if t.namespaced && name.is_some() {
                return Err(StatusError::resource_not_found());
            }
            Target {
                t,
                namespace: None,
                name: name.map(str::to_string),
                subresource: sub.map(str::to_string),
            }
        }
        [] => unreachable!("handled above"),
    };
    if let Some(sub) = &target.subresource
        && (sub != "status" || !target.t.status)
    {
        return Err(StatusError::resource_not_found());
    }
    Ok(Ok(target))
}

async fn resource(State(app): State<Arc<App>>, request: Request) -> Response {
    let mut warnings = Vec::new();
    let mut response = match handle(&app, request, &mut warnings).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    // Admission webhooks' warnings, as `Warning: 299 - "text"` headers.
    for w in warnings {
        let quoted = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{quoted}\"")) {
            response.headers_mut().append(header::WARNING, v);
        }
    }
    response
}

/// Create, through admission when any webhook is configured: mutating
/// webhooks see the object as sent, validating ones as it will be stored
/// (its name generated, its uid and creation time set), and exactly that is
/// stored.
async fn create(
    app: &App,
    t: &ResourceType,
    ns: Option<&str>,
    body: Value,
    opts: &WriteOptions,
    field_manager: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<Arc<Value>, StatusError> {
    if !Webhooks::any(&app.store) {
        return app.store.create(t, ns, body, opts);
    }
    let name = body
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut attrs = Attributes {
        t,
        namespace: ns,
        name: &name,
        subresource: None,
        operation: Operation::Create,
        old: None,
        dry_run: opts.dry_run,
        options: Operation::Create.options(opts.dry_run, field_manager),
    };
    let mut object = Some(body);
    app.webhooks
        .mutate(&app.store, &attrs, &mut object, warnings)
        .await?;
    let dry = WriteOptions {
        dry_run: true,
        ..opts.clone()
    };
    let stored = app
        .store
        .create(t, ns, object.unwrap_or(Value::Null), &dry)?;
    let stored_name = stored
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    attrs.name = &stored_name;
    // As it will be stored, before it has a resourceVersion.
    let mut shown = (*stored).clone();
    if let Some(meta) = shown.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    app.webhooks
        .validate(&app.store, &attrs, Some(&shown), warnings)
        .await?;
    if opts.dry_run {
        return Ok(stored);
    }
    app.store.create_admitted(t, ns, (*stored).clone(), opts)
}

/// Update with `update(current)`, through admission when any webhook is
/// configured, as kube-apiserver does inside its update loop: mutating
/// webhooks see the updated object, validating ones what will be stored;
/// if the object changed meanwhile, it all runs again on the new state.
#[allow(clippy::too_many_arguments)]
async fn update(
    app: &App,
    t: &ResourceType,
    ns: Option<&str>,
    name: &str,
    subresource: Option<&str>,
    opts: &WriteOptions,
    field_manager: Option<&str>,
    warnings: &mut Vec<String>,
    update: impl Fn(&Value) -> Result<Value, StatusError>,
) -> Result<Arc<Value>, StatusError> {
    if !Webhooks::any(&app.store) {
        return app
            .store
            .update_with(t, ns, name, subresource, opts, update);
    }
    for _ in 0..5 {
        let current = app.store.get(t, ns, name)?;
        let rv = current.pointer("/metadata/resourceVersion").cloned();
        let attrs = Attributes {
            t,
            namespace: ns,
            name,
            subresource,
            operation: Operation::Update,
            old: Some(&current),
            dry_run: opts.dry_run,
            options: Operation::Update.options(opts.dry_run, field_manager),
        };
        let mut object = Some(update(&current)?);
        app.webhooks
            .mutate(&app.store, &attrs, &mut object, warnings)
            .await?;
        let admitted = object.unwrap_or(Value::Null);
        let moved = std::sync::atomic::AtomicBool::new(false);
        let same_state = |cur: &Value| {
            if cur.pointer("/metadata/resourceVersion").cloned() == rv {
                Ok(admitted.clone())
            } else {
                moved.store(true, std::sync::atomic::Ordering::Relaxed);
                Err(StatusError::conflict(t, name))
            }
        };
        let dry = WriteOptions {
            dry_run: true,
            ..opts.clone()
        };
        let stored = match app
            .store
            .update_with(t, ns, name, subresource, &dry, same_state)
        {
            Err(_) if moved.load(std::sync::atomic::Ordering::Relaxed) => continue,
            other => other?,
        };
        app.webhooks
            .validate(&app.store, &attrs, Some(&stored), warnings)
            .await?;
        match app
            .store
            .update_with(t, ns, name, subresource, opts, same_state)
        {
            Err(_) if moved.load(std::sync::atomic::Ordering::Relaxed) => {}
            other => return other,
        }
    }
    Err(StatusError::conflict(t, name))
}

/// Admission for a delete: webhooks see the stored object as `oldObject`.
async fn admit_delete(
    app: &App,
    t: &ResourceType,
    ns: Option<&str>,
    name: &str,
    dry_run: bool,
    warnings: &mut Vec<String>,
) -> Result<(), StatusError> {
    if !Webhooks::any(&app.store) {
        return Ok(());
    }
    let current = app.store.get(t, ns, name)?;
    let attrs = Attributes {
        t,
        namespace: ns,
        name,
        subresource: None,
        operation: Operation::Delete,
        old: Some(&current),
        dry_run,
        options: Operation::Delete.options(dry_run, None),
    };
    let mut none = None;
    app.webhooks
        .mutate(&app.store, &attrs, &mut none, warnings)
        .await?;
    app.webhooks
        .validate(&app.store, &attrs, None, warnings)
        .await
}

fn field_manager(q: &HashMap<String, String>, headers: &HeaderMap) -> String {
    if let Some(m) = q.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.clone();
    }
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown")
        .to_string()
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            s.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

fn parse_body(ct: &str, bytes: &[u8], what: &str) -> Result<Value, StatusError> {
    match ct {
        "application/json"
        | ""
        | "application/apply-patch+yaml"
        | "application/merge-patch+json"
        | "application/json-patch+json"
        | "application/strategic-merge-patch+json" => {
            if ct == "application/apply-patch+yaml"
                && bytes
                    .iter()
                    .find(|b| !b.is_ascii_whitespace())
                    .is_none_or(|b| *b != b'{')
            {
                return serde_norway::from_slice(bytes)
                    .map_err(|e| StatusError::bad_request(format!("error decoding YAML: {e}")));
            }
            serde_json::from_slice(bytes).map_err(|e| {
                StatusError::bad_request(format!("{what} cannot be handled as JSON: {e}"))
            })
        }
        "application/yaml" => serde_norway::from_slice(bytes)
            .map_err(|e| StatusError::bad_request(format!("error decoding YAML: {e}"))),
        "application/vnd.kubernetes.protobuf" => {
            protobuf::decode(bytes).map_err(|(code, message)| {
                if code == 415 {
                    StatusError::unsupported_media_type(message, false)
                } else {
                    StatusError::bad_request(message)
                }
            })
        }
        other => Err(StatusError::unsupported_media_type(
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml ({other} is not supported)"
            ),
            false,
        )),
    }
}

fn list_value(t: &ResourceType, result: &crate::storage::ListResult) -> Value {
    let mut metadata = json!({"resourceVersion": result.rv.to_string()});
    if let Some(c) = &result.continue_token {
        metadata["continue"] = json!(c);
    }
    if let Some(r) = result.remaining {
        metadata["remainingItemCount"] = json!(r);
    }
    // Built-in list items carry no apiVersion or kind, as on the real
    // server; custom resources are unstructured and keep them.
    let items: Vec<Value> = result
        .items
        .iter()
        .map(|v| {
            let mut item = (**v).clone();
            if !t.custom
                && let Some(m) = item.as_object_mut()
            {
                m.remove("apiVersion");
                m.remove("kind");
            }
            item
        })
        .collect();
    json!({"kind": format!("{}List", t.kind), "apiVersion": t.api_version(), "metadata": metadata, "items": items})
}

fn selectors(q: &HashMap<String, String>) -> Result<(LabelSelector, FieldSelector), StatusError> {
    let labels = LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))
        .map_err(|e| StatusError::bad_request(format!("unable to parse requirement: {e}")))?;
    let fields = FieldSelector::parse(q.get("fieldSelector").map_or("", String::as_str)).map_err(|e| match e {
        informant_k8s::selector::Error::UnsupportedField { field, .. } => {
            StatusError::bad_request(format!("\"{field}\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""))
        }
        other => StatusError::bad_request(other.to_string()),
    })?;
    Ok((labels, fields))
}

async fn read_body(body: Body) -> Result<Bytes, StatusError> {
    axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| StatusError::too_large(MAX_BODY))
}

async fn handle(
    app: &Arc<App>,
    request: Request,
    warnings: &mut Vec<String>,
) -> Result<Response, StatusError> {
    let (parts, body) = request.into_parts();
    let q = query(parts.uri.query());
    let headers = parts.headers;
    let method = parts.method;
    let target = match route(app, parts.uri.path())? {
        Ok(t) => t,
        Err((group, version)) => {
            if method != Method::GET {
                return Err(StatusError::method_not_allowed());
            }
            let registry = app.store.registry();
            let doc = if version.is_empty() {
                discovery_documents::api_group(&registry, &group)
            } else {
                discovery_documents::api_resource_list(&registry, &group, &version)
            };
            return doc
                .map(|d| json_response(StatusCode::OK, &d))
                .ok_or_else(StatusError::resource_not_found);
        }
    };
    let dry_run = q.get("dryRun").is_some_and(|d| d == "All");
    let t = target.t.clone();
    let ns = target.namespace.as_deref();
    let opts = WriteOptions {
        manager: field_manager(&q, &headers),
        dry_run,
    };
    let manager_param = q.get("fieldManager").map(String::as_str);
    match (&method, target.name.as_deref()) {
        (&Method::GET, None) => {
            let (labels, fields) = selectors(&q)?;
            if q.get("watch").is_some_and(|w| w == "true" || w == "1") {
                return watch_response(app, &t, ns, labels, fields, &q);
            }
            let limit = q.get("limit").and_then(|l| l.parse().ok());
            if q.contains_key("continue")
                && q.get("resourceVersion").is_some_and(|rv| !rv.is_empty())
            {
                return Err(StatusError::bad_request(
                    "specifying resource version is not allowed when using continue",
                ));
            }
            if q.contains_key("resourceVersionMatch") && !q.contains_key("resourceVersion") {
                return Err(StatusError::invalid(&t, "", &[("resourceVersionMatch", "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided".into())]));
            }
            if q.get("resourceVersionMatch").is_some_and(|m| m == "Exact") {
                let rv: u64 = q
                    .get("resourceVersion")
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(0);
                if rv < app.store.compacted_rv() {
                    return Err(StatusError::expired(
                        "The resourceVersion for the provided list is too old.",
                    ));
                }
            }
            // resourceVersion=0 with a limit is served from the watch cache, unpaged.
            let limit = if q.get("resourceVersion").is_some_and(|r| r == "0") {
                None
            } else {
                limit
            };
            let result = app.store.list(
                &t,
                ns,
                &labels,
                &fields,
                limit,
                q.get("continue").map(String::as_str),
            )?;
            Ok(json_response(StatusCode::OK, &list_value(&t, &result)))
        }
        (&Method::GET, Some(name)) => Ok(json_response(
            StatusCode::OK,
            &*app.store.get(&t, ns, name)?,
        )),
        (&Method::POST, None) => {
            let bytes = read_body(body).await?;
            let v = parse_body(&content_type(&headers), &bytes, &t.kind)?;
            let created = create(app, &t, ns, v, &opts, manager_param, warnings).await?;
            Ok(json_response(StatusCode::CREATED, &created))
        }
        (&Method::PUT, Some(name)) => {
            let bytes = read_body(body).await?;
            let v = parse_body(&content_type(&headers), &bytes, &t.kind)?;
            let updated = update(
                app,
                &t,
                ns,
                name,
                target.subresource.as_deref(),
                &opts,
                manager_param,
                warnings,
                |_| Ok(v.clone()),
            )
            .await?;
            Ok(json_response(StatusCode::OK, &updated))
        }
        (&Method::PATCH, Some(name)) => {
            let bytes = read_body(body).await?;
            patch_request(
                app,
                &t,
                ns,
                name,
                target.subresource.as_deref(),
                &content_type(&headers),
                &bytes,
                &q,
                opts,
                warnings,
            )
            .await
        }
        (&Method::DELETE, Some(name)) => {
            let bytes = read_body(body).await?;
            let options: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
                Value::Null
            } else {
                serde_json::from_slice(&bytes)
                    .map_err(|e| StatusError::bad_request(format!("invalid DeleteOptions: {e}")))?
            };
            let uid = options
                .pointer("/preconditions/uid")
                .and_then(Value::as_str);
            let rv = options
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str);
            let dry_run = dry_run
                || options
                    .get("dryRun")
                    .and_then(Value::as_array)
                    .is_some_and(|d| d.iter().any(|x| x == "All"));
            admit_delete(app, &t, ns, name, dry_run, warnings).await?;
            let (last, gone) = app.store.delete(&t, ns, name, uid, rv, dry_run)?;
            if !gone || t.kind == "Namespace" || t.kind == "CustomResourceDefinition" {
                let mut shown = (*last).clone();
                if t.kind == "Namespace" && t.group.is_empty() {
                    shown["metadata"]["deletionTimestamp"] = json!(
                        jiff::Timestamp::now()
                            .strftime("%Y-%m-%dT%H:%M:%SZ")
                            .to_string()
                    );
                    shown["status"] = json!({"phase": "Terminating"});
                }
                return Ok(json_response(StatusCode::OK, &shown));
            }
            let mut details = json!({"name": name});
            if !t.group.is_empty() {
                details["group"] = json!(t.group);
            }
            details["kind"] = json!(t.plural);
            details["uid"] = last
                .pointer("/metadata/uid")
                .cloned()
                .unwrap_or(Value::Null);
            Ok(json_response(
                StatusCode::OK,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
            ))
        }
        (&Method::DELETE, None) => {
            let (labels, fields) = selectors(&q)?;
            let listed = app.store.list(&t, ns, &labels, &fields, None, None)?;
            let mut deleted = Vec::new();
            for item in &listed.items {
                let name = item
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let item_ns = item.pointer("/metadata/namespace").and_then(Value::as_str);
                admit_delete(app, &t, item_ns, name, dry_run, warnings).await?;
                if let Ok((last, _)) = app.store.delete(&t, item_ns, name, None, None, dry_run) {
                    deleted.push(last);
                }
            }
            let result = crate::storage::ListResult {
                items: deleted,
                rv: app.store.resource_version(),
                continue_token: None,
                remaining: None,
            };
            Ok(json_response(StatusCode::OK, &list_value(&t, &result)))
        }
        _ => Err(StatusError::method_not_allowed()),
    }
}

fn watch_response(
    app: &Arc<App>,
    t: &Arc<ResourceType>,
    ns: Option<&str>,
    labels: LabelSelector,
    fields: FieldSelector,
    q: &HashMap<String, String>,
) -> Result<Response, StatusError> {
    let send_initial_events = q.get("sendInitialEvents").is_some_and(|v| v == "true");
    if send_initial_events
        && q.get("resourceVersionMatch").map(String::as_str) != Some("NotOlderThan")
    {
        return Err(StatusError::invalid(t, "", &[("resourceVersionMatch", "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".into())]));
    }
    let params = WatchParams {
        namespace: ns.map(str::to_string),
        labels,
        fields,
        resource_version: q.get("resourceVersion").and_then(|r| r.parse().ok()),
        send_initial_events,
        bookmarks: q.get("allowWatchBookmarks").is_some_and(|v| v == "true"),
        timeout: Duration::from_secs(
            q.get("timeoutSeconds")
                .and_then(|s| s.parse().ok())
                .unwrap_or(1800),
        ),
        bookmark_interval: app.config.bookmark_interval,
    };
    let body = watch::watch(app.store.clone(), app.faults.clone(), t.clone(), params);
    let mut r = Response::new(body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(r)
}

#[allow(clippy::too_many_arguments)]
async fn patch_request(
    app: &Arc<App>,
    t: &Arc<ResourceType>,
    ns: Option<&str>,
    name: &str,
    subresource: Option<&str>,
    ct: &str,
    bytes: &[u8],
    q: &HashMap<String, String>,
    opts: WriteOptions,
    warnings: &mut Vec<String>,
) -> Result<Response, StatusError> {
    let manager_param = q.get("fieldManager").map(String::as_str);
    match ct {
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            if ct == "application/strategic-merge-patch+json" && t.custom {
                return Err(StatusError::unsupported_media_type(
                    format!(
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml ({ct} is not supported for custom resources)"
                    ),
                    true,
                ));
            }
            let mut p = parse_body(ct, bytes, "the patch")?;
            strip_directives(&mut p);
            let updated = update(
                app,
                t,
                ns,
                name,
                subresource,
                &opts,
                manager_param,
                warnings,
                |cur| {
                    let mut v = cur.clone();
                    patch::merge(&mut v, &p);
                    Ok(v)
                },
            )
            .await?;
            Ok(json_response(StatusCode::OK, &updated))
        }
        "application/json-patch+json" => {
            let p = parse_body(ct, bytes, "the patch")?;
            let updated = update(
                app,
                t,
                ns,
                name,
                subresource,
                &opts,
                manager_param,
                warnings,
                |cur| {
                    let mut v = cur.clone();
                    patch::json_patch(&mut v, &p).map_err(|(code, reason)| {
                        if code == 422 {
                            tracing::debug!(%reason, "JSON patch rejected");
                            StatusError::patch_failed()
                        } else {
                            StatusError::bad_request(reason)
                        }
                    })?;
                    Ok(v)
                },
            )
            .await?;
            Ok(json_response(StatusCode::OK, &updated))
        }
        "application/apply-patch+yaml" => {
            let manager = q.get("fieldManager").filter(|m| !m.is_empty()).cloned().ok_or_else(|| {
                let mut e = StatusError::invalid(t, name, &[("fieldManager", "Required value: is required for apply patch".into())]);
                e.message = "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".into();
                e
            })?;
            let force = q.get("force").is_some_and(|f| f == "true");
            let mut applied = parse_body(ct, bytes, "the applied configuration")?;
            if applied
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .is_some_and(|n| n != name)
            {
                return Err(StatusError::bad_request(format!(
                    "the name of the object does not match the name on the URL ({name})"
                )));
            }
            applied["metadata"]["name"] = json!(name);
            let raw_opts = WriteOptions {
                manager: String::new(),
                dry_run: opts.dry_run,
            };
            let now = jiff::Timestamp::now()
                .strftime("%Y-%m-%dT%H:%M:%SZ")
                .to_string();
            match app.store.get(t, ns, name) {
                Err(e) if e.code == 404 && subresource.is_none() => {
                    let mut own = Ownership::default();
                    let mut body = own.apply(&manager, None, &applied);
                    own.write(&mut body, &t.api_version(), &now);
                    let created =
                        create(app, t, ns, body, &raw_opts, Some(&manager), warnings).await?;
                    Ok(json_response(StatusCode::CREATED, &created))
                }
                Err(e) => Err(e),
                Ok(_) => {
                    let updated = update(
                        app,
                        t,
                        ns,
                        name,
                        subresource,
                        &raw_opts,
                        Some(&manager),
                        warnings,
                        |cur| {
                            let mut own = Ownership::of(cur);
                            let conflicts: Vec<_> = own
                                .conflicts(&manager, cur, &applied)
                                .into_iter()
                                .filter(|(owner, field)| {
                                    !upgraded_from_client_side_apply(cur, owner, field)
                                })
                                .collect();
                            if !conflicts.is_empty() && !force {
                                return Err(StatusError::apply_conflict(t, name, &conflicts));
                            }
                            let mut v = own.apply(&manager, Some(cur), &applied);
                            // An apply never carries a resourceVersion precondition unless given.
                            if applied.pointer("/metadata/resourceVersion").is_none() {
                                v["metadata"]["resourceVersion"] =
                                    cur["metadata"]["resourceVersion"].clone();
                            }
                            own.write(&mut v, &t.api_version(), &now);
                            Ok(v)
                        },
                    )
                    .await?;
                    Ok(json_response(StatusCode::OK, &updated))
                }
            }
        }
        _ => Err(StatusError::unsupported_media_type(
            "415: Unsupported Media Type",
            true,
        )),
    }
}

/// The real apiserver lets a server-side apply take over fields that
/// `kubectl apply` (client side) set, when they are in the object's
/// last-applied-configuration: that is how `kubectl apply --server-side`
/// succeeds on objects first applied client side, even with new values.
fn upgraded_from_client_side_apply(current: &Value, owner: &str, field: &str) -> bool {
    if owner != "kubectl-client-side-apply" && owner != "before-first-apply" {
        return false;
    }
    let Some(last) = current
        .pointer("/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration")
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
    else {
        return false;
    };
    let path: Vec<String> = field
        .trim_start_matches('.')
        .split('.')
        .map(str::to_string)
        .collect();
    patch::value_at(&last, &path).is_some()
}

/// Strategic merge patch directives (`$patch`, `$setElementOrder/...`,
/// `$retainKeys`...) have no meaning in a merge patch: drop them.
fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|k, _| !k.starts_with('$'));
            map.values_mut().for_each(strip_directives);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_directives),
        _ => {}
    }
}
