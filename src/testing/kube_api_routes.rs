//! Request handling of the Kubernetes API test server ([`super::kube_api`]):
//! routing to discovery documents and objects, and the API server's rules.

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use super::kube_api_store::{
    Key, ResourceType, Store, merge_patch, selector_matches, strategic_merge_patch,
};

/// An HTTP status and a JSON body.
pub type Answer = (StatusCode, Value);

/// A `Status` object, as the API server answers errors.
pub fn status_answer(
    code: StatusCode,
    reason: &str,
    message: &str,
    details: Option<Value>,
) -> Answer {
    let mut status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code.as_u16()});
    if let Some(d) = details {
        status["details"] = d;
    }
    (code, status)
}

fn not_found(t: &ResourceType, name: &str) -> Answer {
    status_answer(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("{} \"{name}\" not found", t.qualified()),
        Some(json!({"name": name, "group": t.group, "kind": t.plural})),
    )
}

pub fn route(
    store: &mut Store,
    server: &str,
    method: &Method,
    path: &str,
    query: &str,
    content_type: &str,
    body: &[u8],
) -> Answer {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let page_not_found = (
        StatusCode::NOT_FOUND,
        Value::String("404 page not found".into()),
    );
    let (group, version, rest) = match segs.as_slice() {
        ["api"] => return (StatusCode::OK, store.api_versions(server)),
        ["apis"] => return (StatusCode::OK, store.api_group_list()),
        ["apis", g] => {
            return store
                .api_group(g)
                .map_or(page_not_found, |d| (StatusCode::OK, d));
        }
        ["api", v] => {
            return store
                .resource_list("", v)
                .map_or(page_not_found, |d| (StatusCode::OK, d));
        }
        ["apis", g, v] => {
            return store
                .resource_list(g, v)
                .map_or(page_not_found, |d| (StatusCode::OK, d));
        }
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return page_not_found,
    };
    let (namespace, plural, name) = match rest {
        ["namespaces", ns, plural] => (*ns, *plural, None),
        ["namespaces", ns, plural, name] => (*ns, *plural, Some(*name)),
        [plural] => ("", *plural, None),
        [plural, name] => ("", *plural, Some(*name)),
        _ => return page_not_found,
    };
    let Some(t) = store.find(group, version, plural) else {
        return page_not_found;
    };
    if t.namespaced == namespace.is_empty() && name.is_some() {
        return page_not_found;
    }
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    match (method, name) {
        (&Method::GET, None) => list(store, &t, namespace, &label_selector(query)),
        (&Method::GET, Some(n)) => store
            .view(&key(&t, namespace, n))
            .map_or_else(|| not_found(&t, n), |o| (StatusCode::OK, o)),
        (&Method::POST, None) => create(store, &t, namespace, parsed),
        (&Method::PUT, Some(n)) => replace(store, &t, namespace, n, parsed),
        (&Method::PATCH, Some(n)) => patch(store, &t, namespace, n, content_type, parsed),
        (&Method::DELETE, Some(n)) => delete(store, &t, namespace, n),
        _ => status_answer(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "not supported by the test server",
            None,
        ),
    }
}

fn key(t: &ResourceType, namespace: &str, name: &str) -> Key {
    (
        t.group.clone(),
        t.plural.clone(),
        namespace.into(),
        name.into(),
    )
}

/// The `labelSelector` of a query string ("" when none).
fn label_selector(query: &str) -> String {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "labelSelector")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn list(store: &Store, t: &ResourceType, namespace: &str, selector: &str) -> Answer {
    let items: Vec<Value> = store
        .objects
        .keys()
        .filter(|(g, p, ns, _)| {
            *g == t.group && *p == t.plural && (namespace.is_empty() || ns == namespace)
        })
        .filter_map(|k| store.view(k))
        .filter(|o| selector_matches(selector, o))
        .collect();
    (
        StatusCode::OK,
        json!({"kind": format!("{}List", t.kind), "apiVersion": t.api_version(),
        "metadata": {"resourceVersion": "1"}, "items": items}),
    )
}

fn bad_request(message: &str) -> Answer {
    status_answer(StatusCode::BAD_REQUEST, "BadRequest", message, None)
}

/// Checks a body against the type and the path; gives the object's name.
fn check_body(t: &ResourceType, namespace: &str, obj: &Value) -> Result<String, Answer> {
    if obj["kind"].as_str() != Some(t.kind.as_str())
        || obj["apiVersion"].as_str() != Some(t.api_version().as_str())
    {
        return Err(bad_request(&format!(
            "the body is not a {} {}",
            t.api_version(),
            t.kind
        )));
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    if name.is_empty() {
        return Err(status_answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "metadata.name: Required value",
            None,
        ));
    }
    let body_ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
    if t.namespaced && !body_ns.is_empty() && body_ns != namespace {
        return Err(bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(name.to_string())
}

fn create(store: &mut Store, t: &ResourceType, namespace: &str, body: Option<Value>) -> Answer {
    let Some(mut obj) = body else {
        return bad_request("the body is not JSON");
    };
    let name = match check_body(t, namespace, &obj) {
        Ok(n) => n,
        Err(answer) => return answer,
    };
    if t.namespaced
        && !store.objects.contains_key(&(
            String::new(),
            "namespaces".into(),
            String::new(),
            namespace.into(),
        ))
    {
        return status_answer(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("namespaces \"{namespace}\" not found"),
            Some(json!({"name": namespace, "kind": "namespaces"})),
        );
    }
    let k = key(t, namespace, &name);
    if store.objects.contains_key(&k) {
        return status_answer(
            StatusCode::CONFLICT,
            "AlreadyExists",
            &format!("{} \"{name}\" already exists", t.qualified()),
            Some(json!({"name": name, "group": t.group, "kind": t.plural})),
        );
    }
    let rv = store.bump();
    let meta = &mut obj["metadata"];
    meta["resourceVersion"] = rv.into();
    meta["uid"] = format!("uid-{}-{name}", t.plural).into();
    meta["creationTimestamp"] = "2026-01-01T00:00:00Z".into();
    if t.namespaced {
        meta["namespace"] = namespace.into();
    }
    if t.kind == "Namespace" {
        obj["status"] = json!({"phase": "Active"});
    }
    if t.kind == "CustomResourceDefinition" {
        let ready = std::time::Instant::now() + store.crd_delay;
        store.crd_ready_at.insert(name.clone(), ready);
    }
    store.objects.insert(k.clone(), obj);
    (StatusCode::CREATED, store.view(&k).unwrap_or_default())
}

fn replace(
    store: &mut Store,
    t: &ResourceType,
    namespace: &str,
    name: &str,
    body: Option<Value>,
) -> Answer {
    let Some(mut obj) = body else {
        return bad_request("the body is not JSON");
    };
    match check_body(t, namespace, &obj) {
        Ok(n) if n == name => {}
        Ok(_) => return bad_request("the name of the object does not match the name on the URL"),
        Err(answer) => return answer,
    }
    let k = key(t, namespace, name);
    let Some(live) = store.objects.get(&k).cloned() else {
        return not_found(t, name);
    };
    let Some(rv) = obj["metadata"]["resourceVersion"].as_str() else {
        return status_answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
            None,
        );
    };
    if Some(rv) != live["metadata"]["resourceVersion"].as_str() {
        return status_answer(
            StatusCode::CONFLICT,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                t.qualified()
            ),
            None,
        );
    }
    let rv = store.bump();
    let meta = &mut obj["metadata"];
    meta["resourceVersion"] = rv.into();
    meta["uid"] = live["metadata"]["uid"].clone();
    meta["creationTimestamp"] = live["metadata"]["creationTimestamp"].clone();
    store.objects.insert(k.clone(), obj);
    (StatusCode::OK, store.view(&k).unwrap_or_default())
}

fn patch(
    store: &mut Store,
    t: &ResourceType,
    namespace: &str,
    name: &str,
    content_type: &str,
    body: Option<Value>,
) -> Answer {
    let strategic = content_type.starts_with("application/strategic-merge-patch+json");
    if !strategic && !content_type.starts_with("application/merge-patch+json") {
        return status_answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            &format!("the test server does not apply {content_type} patches"),
            None,
        );
    }
    let Some(patch_doc) = body else {
        return bad_request("the body is not JSON");
    };
    let k = key(t, namespace, name);
    let rv = store.bump();
    let Some(obj) = store.objects.get_mut(&k) else {
        return not_found(t, name);
    };
    if strategic {
        strategic_merge_patch(obj, &patch_doc);
    } else {
        merge_patch(obj, &patch_doc);
    }
    obj["metadata"]["resourceVersion"] = rv.into();
    (StatusCode::OK, store.view(&k).unwrap_or_default())
}

fn delete(store: &mut Store, t: &ResourceType, namespace: &str, name: &str) -> Answer {
    let k = key(t, namespace, name);
    if store.objects.remove(&k).is_none() {
        return not_found(t, name);
    }
    if t.kind == "Namespace" {
        store.objects.retain(|(_, _, ns, _), _| ns != name);
    }
    if t.kind == "CustomResourceDefinition" {
        store.crd_ready_at.remove(name);
    }
    (
        StatusCode::OK,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": {"name": name, "group": t.group, "kind": t.plural}}),
    )
}
