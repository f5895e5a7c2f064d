//! The CRD reference (`docs/crd-reference.md`), generated from the same
//! schemas as the CRDs so it cannot drift from them.

use std::fmt::Write;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray,
};

/// Markdown reference for every kind: one table of fields per kind.
pub fn markdown() -> String {
    let mut out = String::from(
        "# CRD reference\n\nGenerated from the Rust types by `make crds` (`ses-reputation-operator docs`); do not edit.\n\
         `kubectl explain <kind>.spec` shows the same descriptions.\n",
    );
    for crd in super::crds() {
        kind_section(&mut out, &crd);
    }
    out
}

fn kind_section(out: &mut String, crd: &CustomResourceDefinition) {
    let names = &crd.spec.names;
    let scope = &crd.spec.scope;
    let short = names.short_names.clone().unwrap_or_default().join(", ");
    let _ = write!(
        out,
        "\n## {}\n\n`{}/v1alpha1`, {scope}, short name `{short}`.\n",
        names.kind, crd.spec.group
    );
    let Some(schema) = crd
        .spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
    else {
        return;
    };
    if let Some(desc) = &schema.description {
        let _ = writeln!(out, "\n{desc}");
    }
    for rule in schema.x_kubernetes_validations.iter().flatten() {
        let _ = writeln!(out, "\n- Rule: {}", rule.message.as_deref().unwrap_or(&rule.rule));
    }
    for part in ["spec", "status"] {
        let Some(props) = schema.properties.as_ref().and_then(|p| p.get(part)) else {
            continue;
        };
        let _ = write!(
            out,
            "\n### {part}\n\n| field | type | default | description |\n|---|---|---|---|\n"
        );
        fields(out, part, props);
    }
}

fn fields(out: &mut String, path: &str, schema: &JSONSchemaProps) {
    let Some(props) = &schema.properties else { return };
    let required = schema.required.clone().unwrap_or_default();
    for (name, prop) in props {
        let here = format!("{path}.{name}");
        let mut desc = prop
            .description
            .clone()
            .unwrap_or_default()
            .replace('\n', " ")
            .replace('|', "\\|");
        let mut limits = Vec::new();
        if required.contains(name) {
            limits.push("required".to_string());
        }
        if let Some(e) = &prop.enum_ {
            let values: Vec<String> = e
                .iter()
                .map(|v| v.0.to_string().trim_matches('"').to_string())
                .collect();
            limits.push(format!("one of {}", values.join(", ")));
        }
        if let Some(p) = &prop.pattern {
            limits.push(format!("pattern `{}`", p.replace('|', "\\|")));
        }
        match (prop.minimum, prop.maximum) {
            (Some(a), Some(b)) => limits.push(format!("{a}-{b}")),
            (Some(a), None) => limits.push(format!(">= {a}")),
            (None, Some(b)) => limits.push(format!("<= {b}")),
            _ => {}
        }
        if let Some(n) = prop.max_length {
            limits.push(format!("max length {n}"));
        }
        if let Some(n) = prop.max_items {
            limits.push(format!("max {n} items"));
        }
        for rule in prop.x_kubernetes_validations.iter().flatten() {
            if let Some(m) = &rule.message {
                limits.push(m.replace('|', "\\|"));
            }
        }
        if !limits.is_empty() {
            let _ = write!(desc, " ({})", limits.join("; "));
        }
        let type_ = match (prop.type_.as_deref(), prop.items.as_ref()) {
            (Some("array"), Some(JSONSchemaPropsOrArray::Schema(item))) => {
                format!("[]{}", item.type_.as_deref().unwrap_or("object"))
            }
            (Some(t), _) => t.to_string(),
            (None, _) => "object".to_string(),
        };
        let default = prop.default.as_ref().map(|d| format!("`{}`", d.0)).unwrap_or_default();
        let _ = writeln!(out, "| `{here}` | {type_} | {default} | {desc} |");
        // Conditions and label selectors are standard Kubernetes shapes.
        if name == "conditions" || name.ends_with("elector") || name == "allowedNamespaces" {
            continue;
        }
        if let Some(JSONSchemaPropsOrArray::Schema(item)) = &prop.items {
            fields(out, &format!("{here}[]"), item);
        }
        fields(out, &here, prop);
    }
}
