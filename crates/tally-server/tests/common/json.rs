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

/// The object in the array `answer` whose `key` equals `value`: how a test picks one device,
/// application or rule out of a list answer. Panics, failing the test with the whole answer,
/// when `answer` is not an array or no object matches.
pub fn entry<'a, T>(answer: &'a Value, key: &str, value: T) -> &'a Value
where
    Value: PartialEq<T>,
    T: std::fmt::Debug,
{
    let found = answer
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item[key] == value);
    found.unwrap_or_else(|| panic!("no {key} {value:?} in {answer}"))
}

/// Asserts that the error answer's `message` contains `text`, showing the whole answer when
/// it does not: how a test checks that a refusal says why.
pub fn assert_message_has(answer: &Value, text: &str) {
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains(text), "{text:?} not in {answer}");
}
