//! The `merge` apply type: the manifest merged into the live object with
//! ACM's "musthave" semantics, as upstream does (its merge comes from the
//! config-policy-controller): every field of the manifest wins, every field
//! only in the live object stays, and a list keeps the live items that the
//! manifest does not mention (items matched by `name`, or by being equal
//! once merged).
//!
//! Known difference: upstream compares strings that parse as Kubernetes
//! quantities (`1Gi` vs `1024Mi`) by value when matching list items; here
//! they are compared as text.

use serde_json::{Map, Value};

/// `desired` merged into `live`.
pub fn must_have(desired: &Value, live: &Value) -> Value {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => {
            let mut merged: Map<String, Value> = d.clone();
            for (key, live_value) in l {
                let value = match d.get(key) {
                    Some(desired_value) => must_have(desired_value, live_value),
                    None => live_value.clone(),
                };
                merged.insert(key.clone(), value);
            }
            Value::Object(merged)
        }
        (Value::Array(d), Value::Array(l)) if !l.is_empty() => Value::Array(merge_lists(d, l)),
        // A null in the manifest means "don't care": the live mapping stays.
        (Value::Null, Value::Object(_)) => live.clone(),
        _ => desired.clone(),
    }
}

fn merge_lists(desired: &[Value], live: &[Value]) -> Vec<Value> {
    let mut merged: Vec<Value> = desired.to_vec();
    let mut taken = vec![false; desired.len()];
    // Distinct live items with how often each occurs, in first-seen order.
    let mut distinct: Vec<(&Value, usize)> = Vec::new();
    for item in live {
        match distinct.iter_mut().find(|(v, _)| equivalent(v, item)) {
            Some((_, count)) => *count = count.saturating_add(1),
            None => distinct.push((item, 1)),
        }
    }
    for (live_item, count) in distinct {
        let mut matched = 0usize;
        for (i, desired_item) in desired.iter().enumerate() {
            if matched == count {
                break;
            }
            if taken[i] {
                continue;
            }
            let (candidate, same_name) = match (desired_item, live_item) {
                (Value::Object(d), Value::Object(l)) => {
                    let same_name = match (d.get("name"), l.get("name")) {
                        (Some(Value::String(a)), Some(Value::String(b))) => !b.is_empty() && a == b,
                        _ => false,
                    };
                    (must_have(desired_item, live_item), same_name)
                }
                _ => (desired_item.clone(), false),
            };
            if same_name || equivalent(&candidate, live_item) {
                merged[i] = candidate;
                taken[i] = true;
                matched = matched.saturating_add(1);
            }
        }
        for _ in matched..count {
            merged.push(live_item.clone());
        }
    }
    merged
}

/// Deep equality where list order does not matter.
fn equivalent(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| equivalent(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return false;
            }
            let mut used = vec![false; y.len()];
            x.iter().all(|v| {
                let found = y
                    .iter()
                    .enumerate()
                    .find(|(j, w)| !used[*j] && equivalent(v, w))
                    .map(|(j, _)| j);
                match found {
                    Some(j) => {
                        used[j] = true;
                        true
                    }
                    None => false,
                }
            })
        }
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn manifest_fields_win_and_live_fields_stay() {
        let live =
            json!({"data": {"a": "1", "b": "2"}, "metadata": {"uid": "u", "labels": {"x": "1"}}});
        let desired = json!({"data": {"b": "3", "c": "4"}, "metadata": {"labels": {"y": "2"}}});
        assert_eq!(
            must_have(&desired, &live),
            json!({"data": {"b": "3", "c": "4", "a": "1"},
                   "metadata": {"labels": {"y": "2", "x": "1"}, "uid": "u"}})
        );
    }

    #[test]
    fn list_items_with_the_same_name_merge_and_others_are_kept() {
        let live = json!({"containers": [
            {"name": "a", "image": "old", "args": ["x"]},
            {"name": "b", "image": "b"}
        ]});
        let desired = json!({"containers": [{"name": "a", "image": "new"}]});
        assert_eq!(
            must_have(&desired, &live),
            json!({"containers": [
                {"name": "a", "image": "new", "args": ["x"]},
                {"name": "b", "image": "b"}
            ]})
        );
    }

    #[test]
    fn scalar_lists_are_a_union() {
        let live = json!({"l": ["a", "b"]});
        let desired = json!({"l": ["b", "c"]});
        assert_eq!(must_have(&desired, &live), json!({"l": ["b", "c", "a"]}));
    }

    #[test]
    fn an_empty_live_list_takes_the_manifest() {
        assert_eq!(
            must_have(&json!({"l": [1]}), &json!({"l": []})),
            json!({"l": [1]})
        );
    }
}
