//! Form pieces every page shares: the CSRF field, bounded text fields, and a service refusal
//! split into the messages of the fields it names.

use maud::{html, Markup};
use tally_service::ServiceError;

use crate::WebError;

/// The hidden field that carries the session's CSRF token.
pub fn csrf_input(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// Compares a sent token with the expected one in time that does not depend on where they
/// differ.
pub fn same(sent: &str, expected: &str) -> bool {
    sent.len() == expected.len()
        && sent
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The longest text any console field takes, as the API's names and notes.
pub const MAX_FIELD_CHARS: usize = 255;

/// Refuses a field longer than [`MAX_FIELD_CHARS`], naming it.
pub fn bounded(field: &str, value: &str) -> Result<(), (String, String)> {
    match value.chars().count() > MAX_FIELD_CHARS {
        true => Err((
            field.to_string(),
            format!("at most {MAX_FIELD_CHARS} characters"),
        )),
        false => Ok(()),
    }
}

/// Problems found with a form: each with the field it belongs to (empty: the whole form).
#[derive(Debug, Default)]
pub struct Problems(pub Vec<(String, String)>);

impl Problems {
    /// A service error as a form shows it: a validation refusal on the fields of `fields` it
    /// names ([`Problems::from_refusal`]); anything else is an error page.
    pub fn of_invalid(e: ServiceError, fields: &[&str]) -> Result<Self, WebError> {
        match e {
            ServiceError::Invalid(message) => Ok(Self::from_refusal(&message, fields)),
            other => Err(other.into()),
        }
    }

    /// The service's refusal `message` (`field: why; field: why`), each reason put on the field
    /// it names when the form has one.
    pub fn from_refusal(message: &str, fields: &[&str]) -> Self {
        let mut items: Vec<(String, String)> = Vec::new();
        // A reason may hold "; " itself, so a new reason starts only where a field is named.
        for part in message.split("; ") {
            match part.split_once(": ") {
                Some((field, why)) if fields.contains(&field) => {
                    items.push((field.to_string(), why.to_string()))
                }
                _ => match items.last_mut() {
                    Some((_, text)) => *text = format!("{text}; {part}"),
                    None => items.push((String::new(), part.to_string())),
                },
            }
        }
        Problems(items)
    }

    /// Problems with the fields (name, value) longer than [`MAX_FIELD_CHARS`].
    pub fn of_lengths(fields: &[(&str, &String)]) -> Self {
        Problems(
            fields
                .iter()
                .filter_map(|(f, v)| bounded(f, v).err())
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What is wrong with `field` (the whole form for `""`), for the page.
    pub fn of(&self, field: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
            .collect()
    }

    /// The problems of the whole form, and of fields the form does not show.
    pub fn general(&self, fields: &[&str]) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(f, _)| f.is_empty() || !fields.contains(&f.as_str()))
            .map(|(_, m)| m.as_str())
            .collect()
    }
}

/// A labelled control with its problems below it; `control` is the input itself.
pub fn field(label: &str, name: &str, control: Markup, problems: &Problems) -> Markup {
    let errors = problems.of(name);
    html! {
        div.field.invalid[!errors.is_empty()] {
            label for=(name) { (label) }
            (control)
            @for e in &errors { p.error id={(name) "-error"} role="alert" { (e) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_lands_on_the_fields_it_names() {
        let p = Problems::from_refusal(
            "metric: an application measured in users accepts licenses of: users; not installations; quantity: too big",
            &["metric", "quantity"],
        );
        assert_eq!(
            p.of("metric"),
            vec!["an application measured in users accepts licenses of: users; not installations"]
        );
        assert_eq!(p.of("quantity"), vec!["too big"]);
        let general = Problems::from_refusal("row 1: odd; and more", &["metric"]);
        assert_eq!(general.general(&["metric"]), vec!["row 1: odd; and more"]);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abd", "abc"));
        assert!(!same("ab", "abc"));
        assert!(!same("", "abc"));
    }
}
