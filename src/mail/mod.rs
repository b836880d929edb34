//! Email: one outbox, two transports.
//!
//! Every email is a row in the outbox, written in the same transaction as the change that causes it
//! (see `store`); the worker in [`outbox`] delivers rows with retries and back-off. Each row carries its
//! Message-ID from the start, so a delivery repeated after a crash is recognisably the same message, and
//! the mail folder overwrites rather than duplicates it.

pub mod outbox;
mod transport;

pub use transport::{MailDir, Smtp};

use async_trait::async_trait;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};

/// An email as the outbox holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub message_id: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl OutgoingEmail {
    /// A new email with a fresh Message-ID under `domain`.
    pub fn new(domain: &str, to: &str, subject: impl Into<String>, text: String, html: String) -> Self {
        let message_id = format!("<{}@{domain}>", crate::crypto::random_token());
        Self { message_id, to: to.to_owned(), subject: subject.into(), text, html }
    }

    /// The RFC 5322 message: text and HTML alternatives.
    pub fn to_message(&self, from: &str) -> Result<Message, MailError> {
        let from: Mailbox = from.parse().map_err(|e| MailError::Invalid(format!("sender: {e}")))?;
        let to: Mailbox = self.to.parse().map_err(|e| MailError::Invalid(format!("recipient: {e}")))?;
        Message::builder()
            .from(from)
            .to(to)
            .subject(&self.subject)
            .message_id(Some(self.message_id.clone()))
            .multipart(MultiPart::alternative_plain_html(self.text.clone(), self.html.clone()))
            .map_err(|e| MailError::Invalid(e.to_string()))
    }
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

/// The domain part of the sender, for Message-IDs.
pub fn sender_domain(from: &str) -> String {
    from.parse::<Mailbox>().map(|m| m.email.domain().to_owned()).unwrap_or_else(|_| "localhost".into())
}
