//! Report forms: the schema a directive's task carries, and the check of an agent's answers.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Bool,
    Text,
    Number,
    Choice,
    MultiChoice,
    Photo,
    Location,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FormField {
    pub key: String,
    #[serde(default)]
    pub label: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
}

/// Checks a form schema; `path` is the JSON path of the form (e.g. `task.form`).
pub fn validate_form(form: &[FormField], path: &str) -> Result<(), ApiError> {
    let mut seen = std::collections::HashSet::new();
    for (i, f) in form.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let key_ok = !f.key.is_empty() && f.key.len() <= 64 && f.key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !key_ok {
            return Err(ApiError::invalid(format!("{at}.key"), "form keys are 1-64 characters of A-Z a-z 0-9 _"));
        }
        if !seen.insert(f.key.as_str()) {
            return Err(ApiError::invalid(format!("{at}.key"), format!("duplicate form key '{}'", f.key)));
        }
        let needs_options = matches!(f.kind, FieldType::Choice | FieldType::MultiChoice);
        match (&f.options, needs_options) {
            (None, true) => return Err(ApiError::invalid(format!("{at}.options"), "choice fields need options")),
            (Some(o), true) if o.is_empty() => {
                return Err(ApiError::invalid(format!("{at}.options"), "choice fields need at least one option"));
            }
            (Some(_), false) => return Err(ApiError::invalid(format!("{at}.options"), "only choice fields take options")),
            _ => {}
        }
    }
    if form.len() > 100 {
        return Err(ApiError::invalid(path, "at most 100 form fields"));
    }
    Ok(())
}

/// Checks answers against the form. Returns the photo ids the answers reference (the caller
/// checks they exist). Errors name `answers.<key>`.
pub fn validate_answers(form: &[FormField], answers: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    for key in answers.keys() {
        if !form.iter().any(|f| &f.key == key) {
            return Err(ApiError::invalid(format!("answers.{key}"), format!("'{key}' is not a field of this task's form")));
        }
    }
    let mut photos = Vec::new();
    for f in form {
        let at = format!("answers.{}", f.key);
        let value = match answers.get(&f.key) {
            None | Some(Value::Null) => {
                if f.required {
                    return Err(ApiError::unprocessable("required", at, format!("'{}' is required", f.key)));
                }
                continue;
            }
            Some(v) => v,
        };
        let wrong = |what: &str| ApiError::invalid(at.clone(), format!("'{}' must be {what}", f.key));
        match f.kind {
            FieldType::Bool => {
                if !value.is_boolean() {
                    return Err(wrong("true or false"));
                }
            }
            FieldType::Text => {
                let s = value.as_str().ok_or_else(|| wrong("a string"))?;
                if s.len() > 10_000 {
                    return Err(wrong("at most 10000 bytes"));
                }
                if f.required && s.trim().is_empty() {
                    return Err(ApiError::unprocessable("required", at, format!("'{}' is required", f.key)));
                }
            }
            FieldType::Number => {
                if !value.as_f64().is_some_and(f64::is_finite) {
                    return Err(wrong("a number"));
                }
            }
            FieldType::Choice => {
                let s = value.as_str().ok_or_else(|| wrong("one of the options"))?;
                if !f.options.as_ref().is_some_and(|o| o.iter().any(|x| x == s)) {
                    return Err(wrong("one of the options"));
                }
            }
            FieldType::MultiChoice => {
                let items = value.as_array().ok_or_else(|| wrong("a list of options"))?;
                for item in items {
                    let s = item.as_str().ok_or_else(|| wrong("a list of options"))?;
                    if !f.options.as_ref().is_some_and(|o| o.iter().any(|x| x == s)) {
                        return Err(wrong("a list of the options"));
                    }
                }
                if f.required && items.is_empty() {
                    return Err(ApiError::unprocessable("required", at, format!("'{}' is required", f.key)));
                }
            }
            FieldType::Photo => {
                let s = value.as_str().ok_or_else(|| wrong("a photo id from POST /api/v1/photos"))?;
                photos.push(s.to_string());
            }
            FieldType::Location => {
                let loc: super::LatLon = serde_json::from_value(value.clone()).map_err(|_| wrong("{\"lat\", \"lon\"}"))?;
                loc.check(&at)?;
            }
        }
    }
    Ok(photos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form() -> Vec<FormField> {
        serde_json::from_value(json!([
            {"key": "signed", "label": "Signed?", "type": "bool", "required": true},
            {"key": "competitor", "label": "Competitor", "type": "choice", "options": ["none", "A", "B"]},
            {"key": "storefront", "label": "Photo", "type": "photo"}
        ]))
        .unwrap()
    }

    #[test]
    fn answers_are_checked_field_by_field() {
        let f = form();
        let ok = json!({"signed": true, "competitor": "A", "storefront": "pho_1"});
        assert_eq!(validate_answers(&f, ok.as_object().unwrap()).unwrap(), vec!["pho_1".to_string()]);
        let cases = [
            (json!({}), "answers.signed"),
            (json!({"signed": "yes"}), "answers.signed"),
            (json!({"signed": true, "competitor": "C"}), "answers.competitor"),
            (json!({"signed": true, "bogus": 1}), "answers.bogus"),
        ];
        for (answers, field) in cases {
            let err = validate_answers(&f, answers.as_object().unwrap()).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field), "{answers}");
        }
    }

    #[test]
    fn forms_need_options_for_choices_and_unique_keys() {
        let bad: Vec<FormField> = serde_json::from_value(json!([{"key": "c", "type": "choice"}])).unwrap();
        assert_eq!(validate_form(&bad, "task.form").unwrap_err().field.as_deref(), Some("task.form[0].options"));
        let dup: Vec<FormField> = serde_json::from_value(json!([{"key": "a", "type": "bool"}, {"key": "a", "type": "text"}])).unwrap();
        assert_eq!(validate_form(&dup, "task.form").unwrap_err().field.as_deref(), Some("task.form[1].key"));
        assert!(validate_form(&form(), "task.form").is_ok());
    }
}
