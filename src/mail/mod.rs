//! Email: one outbox, two transports.
//!
//! Every email is a row in the outbox, written in the same transaction as the change that causes it
//! (see `store`); the worker in [`outbox`] delivers rows with retries and back-off. Each row carries its
//! Message-ID from the start, so a delivery repeated after a crash is recognisably the same message, and
//! the mail folder overwrites rather than duplicates it.

pub mod compose;
pub mod outbox;
mod transport;

pub use crate::email::{MAX_ATTEMPTS, OutgoingEmail, QueuedEmail, sender_domain};
pub use transport::{MailDir, Smtp};

use async_trait::async_trait;

#[cfg(test)]
mod tests {
    #[test]
    fn a_sender_the_transport_refuses_stops_the_start() {
        for bad in ["a..b@x.org", ".a@x.org", "Lifeline", "Lifeline <lifeline>"] {
            assert!(super::check_sender(bad).is_err(), "{bad}");
        }
        for good in ["Lifeline <lifeline@localhost>", "it@acme.org", "\"IT @ Acme\" <it@acme.org>"] {
            assert!(super::check_sender(good).is_ok(), "{good}");
        }
    }
}
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};

/// The sender must be an address the transport can send from. The core checks its shape; the transport's own
/// parser has the last word, before anything starts, so a sender it refuses stops the start instead of
/// failing every email later.
pub fn check_sender(from: &str) -> Result<(), crate::config::ConfigError> {
    from.parse::<Mailbox>().map(|_| ()).map_err(|_| {
        crate::config::ConfigError::Invalid(
            "mail_from must be an address like \"Lifeline <lifeline@example.org>\"".into(),
        )
    })
}

/// The RFC 5322 message of an outbox email: text and HTML alternatives.
pub fn message(email: &OutgoingEmail, from: &str) -> Result<Message, MailError> {
    let from: Mailbox = from.parse().map_err(|e| MailError::Invalid(format!("sender: {e}")))?;
    let to: Mailbox = email.to.parse().map_err(|e| MailError::Invalid(format!("recipient: {e}")))?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(&email.subject)
        .message_id(Some(email.message_id.clone()))
        .multipart(MultiPart::alternative_plain_html(email.text.clone(), email.html.clone()))
        .map_err(|e| MailError::Invalid(e.to_string()))
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The message itself cannot be sent (a broken address): retrying will not help.
    #[error("invalid message: {0}")]
    Invalid(String),
    /// The transport failed (server down, refused, disk full): try again later.
    #[error("delivery failed: {0}")]
    Transport(String),
}

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, message: &Message) -> Result<(), MailError>;
}
