//! One-line error messages for the command-line tools.

use std::error::Error;

/// Joins an error and its sources with ": ", skipping sources whose message
/// the text already contains, because library errors often include their
/// source's message.
pub fn error_chain(err: &(dyn Error + 'static)) -> String {
    let mut text = String::new();
    let mut next = Some(err);
    while let Some(cause) = next {
        let message = cause.to_string();
        if !text.contains(&message) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&message);
        }
        next = cause.source();
    }
    text
}
