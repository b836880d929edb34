//! Emails as the outbox holds them: composed by the services, stored in the transaction of the change that
//! causes them, delivered later by a transport (which lives outside the core).

/// After this many failed attempts (about a day of back-off) an email is left for an operator.
pub const MAX_ATTEMPTS: i64 = 30;

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
}

/// An outbox row claimed for delivery.
#[derive(Debug, Clone)]
pub struct QueuedEmail {
    pub id: i64,
    pub attempts: i64,
    pub email: OutgoingEmail,
}

/// The domain part of the sender (`Name <user@domain>` or `user@domain`), for Message-IDs; `localhost` when
/// there is none.
pub fn sender_domain(from: &str) -> String {
    let address = match (from.rfind('<'), from.rfind('>')) {
        (Some(open), Some(close)) if open < close => &from[open + 1..close],
        _ => from,
    };
    match address.trim().rsplit_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !domain.is_empty()
                && domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') =>
        {
            domain.to_ascii_lowercase()
        }
        _ => "localhost".into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sender_domain_comes_from_the_address_in_either_form() {
        assert_eq!(super::sender_domain("Lifeline <noreply@Example.org>"), "example.org");
        assert_eq!(super::sender_domain("noreply@example.org"), "example.org");
        assert_eq!(super::sender_domain("not an address"), "localhost");
        assert_eq!(super::sender_domain("x@"), "localhost");
    }
}
