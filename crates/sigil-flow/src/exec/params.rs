//! Binding a run's parameters: each declared parameter gets the value given (of its type) or its
//! default, before anything runs; a value of another type, a missing one without a default, or
//! one the flow does not declare is an error naming it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::Error;
use crate::flow::{Flow, NodeKind, Value};

/// Parameters given to a run: the value, its type's name, and its type.
pub(super) type Given = HashMap<String, (Value, &'static str, std::any::TypeId)>;

/// The parameters' values, by node (`None` for tasks).
pub(super) fn bind(flow: &Flow, parameters: &Given) -> Result<Vec<Option<Value>>, Error> {
    let n = flow.nodes.len();
    let mut outputs: Vec<Option<Value>> = vec![None; n];
    let mut declared = std::collections::HashSet::new();
    for (i, node) in flow.nodes.iter().enumerate() {
        if let NodeKind::Parameter {
            default,
            type_id,
            type_name,
        } = &node.kind
        {
            declared.insert(node.name.as_str());
            outputs[i] = match parameters.get(&node.name) {
                Some((v, _, id)) if id == type_id => Some(v.clone()),
                // `.parameter("env", "prod")` for a String parameter: what a user writes
                Some((v, _, _))
                    if *type_id == std::any::TypeId::of::<String>()
                        && v.downcast_ref::<&'static str>().is_some() =>
                {
                    let s: &str = v.downcast_ref::<&'static str>().expect("checked");
                    Some(Arc::new(s.to_owned()))
                }
                Some((_, given_name, _)) => {
                    return Err(Error::BadParameter {
                        flow: flow.name.clone(),
                        name: node.name.clone(),
                        message: format!(
                            "expects {}, was given {}",
                            sigil_core::value::user_type_name(type_name),
                            sigil_core::value::user_type_name(given_name)
                        ),
                    });
                }
                None => match default {
                    Some(d) => Some(d.clone()),
                    None => {
                        return Err(Error::MissingParameter {
                            flow: flow.name.clone(),
                            name: node.name.clone(),
                        });
                    }
                },
            };
        }
    }
    if let Some(unknown) = parameters.keys().find(|k| !declared.contains(k.as_str())) {
        return Err(Error::BadParameter {
            flow: flow.name.clone(),
            name: unknown.clone(),
            message: "the flow has no such parameter".into(),
        });
    }

    Ok(outputs)
}
