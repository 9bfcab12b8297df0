//! Field-level validation failures, collected so a client learns every problem at once.

use std::fmt;

use serde::Serialize;
use thiserror::Error;

/// One field that broke a rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's name as the client sent it (`snake_case`, dotted for nesting).
    pub field: String,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

/// Every rule a request broke; never empty.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub struct ValidationErrors(Vec<FieldError>);

impl ValidationErrors {
    /// The failures, in the order the fields were checked.
    #[must_use]
    pub fn fields(&self) -> &[FieldError] {
        &self.0
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for error in &self.0 {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            write!(f, "{}: {}", error.field, error.message)?;
        }
        Ok(())
    }
}

/// Collects field errors while a request is parsed.
#[derive(Debug, Default)]
pub struct Collector(Vec<FieldError>);

impl Collector {
    /// Records a failure of `field`.
    pub fn add(&mut self, field: &str, message: impl fmt::Display) {
        self.0.push(FieldError {
            field: field.to_owned(),
            message: message.to_string(),
        });
    }

    /// Keeps the parsed value, or records its error and yields `None`.
    pub fn check<T, E: fmt::Display>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        result.map_err(|e| self.add(field, e)).ok()
    }

    /// `Ok(value)` when nothing was recorded, else every recorded failure.
    ///
    /// # Errors
    /// [`ValidationErrors`] when at least one failure was recorded, or when
    /// `value` is `None` (a field was missing its parsed value).
    pub fn finish<T>(self, value: Option<T>) -> Result<T, ValidationErrors> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ if !self.0.is_empty() => Err(ValidationErrors(self.0)),
            _ => Err(ValidationErrors(vec![FieldError {
                field: String::new(),
                message: "the request is incomplete".to_owned(),
            }])),
        }
    }
}

/// Whether `c` may not appear in text people show each other: a control
/// character (NUL, escape, DEL, …; line breaks and tabs only where
/// `multiline`), or a bidirectional embedding, override or isolate, which
/// can make text read differently from what it is ("Trojan Source"). The
/// plain direction marks (LRM, RLM, ALM) stay: names mixing scripts need
/// them, and they reorder nothing beyond their neighbours.
#[must_use]
pub fn is_forbidden_in_text(c: char, multiline: bool) -> bool {
    let line_break_or_tab = matches!(c, '\n' | '\r' | '\t');
    // U+2028 and U+2029 are line and paragraph separators: line breaks.
    let separator = matches!(c, '\u{2028}' | '\u{2029}');
    (c.is_control() && !(multiline && line_break_or_tab))
        || (separator && !multiline)
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_is_reported_in_order() {
        let mut c = Collector::default();
        let a: Option<i32> = c.check("a", Err::<i32, _>("too small"));
        let b: Option<i32> = c.check("b", Ok::<_, String>(2));
        c.add("c", "missing");
        let err = c.finish(a.zip(b)).unwrap_err();
        assert_eq!(err.fields().len(), 2);
        assert_eq!(err.to_string(), "a: too small; c: missing");
    }

    #[test]
    fn a_clean_collector_passes_the_value_through() {
        let c = Collector::default();
        assert_eq!(c.finish(Some(7)), Ok(7));
    }

    #[test]
    fn a_missing_value_without_errors_is_still_an_error() {
        let c = Collector::default();
        assert!(c.finish::<i32>(None).is_err());
    }
}
