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

/// The address of a sender written `Name <user@domain>` or `user@domain`, as (local part, domain); `None` when
/// it is not one. Deliberately plain and lenient (international domains, quoted names): the server's transport
/// parses `mail_from` fully when it starts (`mail::check_sender`), so nothing it refuses gets that far.
pub fn sender_address(from: &str) -> Option<(&str, &str)> {
    let (name, address) = match (from.find('<'), from.rfind('>')) {
        (Some(open), Some(close)) if open < close && from[close + 1..].trim().is_empty() => {
            (&from[..open], &from[open + 1..close])
        }
        (None, None) => ("", from),
        _ => return None,
    };
    if name.chars().any(|c| c.is_control() || c == '<' || c == '>') {
        return None;
    }
    let (local, domain) = address.trim().rsplit_once('@')?;
    let plain = |part: &str| {
        !part.is_empty() && !part.chars().any(|c| c.is_whitespace() || c.is_control() || "<>@,;".contains(c))
    };
    (plain(local) && plain(domain)).then_some((local, domain))
}

/// The domain part of the sender, for Message-IDs; `localhost` when there is none.
pub fn sender_domain(from: &str) -> String {
    sender_address(from).map(|(_, domain)| domain.to_ascii_lowercase()).unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sender_domain_comes_from_the_address_in_either_form() {
        assert_eq!(super::sender_domain("Lifeline <noreply@Example.org>"), "example.org");
        assert_eq!(super::sender_domain("noreply@example.org"), "example.org");
        assert_eq!(super::sender_domain("not an address"), "localhost");
        assert_eq!(super::sender_domain("x@"), "localhost");
        assert_eq!(super::sender_domain("Lifeline <lifeline@localhost>"), "localhost");
        assert_eq!(super::sender_domain("\"IT @ Acme\" <it@acme.org>"), "acme.org");
        assert_eq!(super::sender_domain("x@bücher.example"), "bücher.example");
        for bad in
            ["", "Lifeline", "Lifeline <lifeline>", "a@b@", "Lifeline <a@b.org", "<a@b.org> trailing", "a b@c.org"]
        {
            assert!(super::sender_address(bad).is_none(), "{bad}");
        }
    }
}
