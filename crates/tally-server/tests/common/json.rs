//! Reading the JSON answers of the server and of the CLI; shared by both crates' tests.

use serde_json::Value;

/// The string `key` of every object in the array `answer`, in order: what most list checks
/// compare. Panics, failing the test, when `answer` is not an array or a `key` is no string.
pub fn strings<'a>(answer: &'a Value, key: &str) -> Vec<&'a str> {
    answer
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item[key].as_str().unwrap())
        .collect()
}
