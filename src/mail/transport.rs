use super::{MailError, Mailer};
use async_trait::async_trait;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;

/// The embedded default: one `.eml` file per message in a folder, named by its Message-ID (the file times
/// give the order).
pub struct MailDir {
    dir: PathBuf,
}

impl MailDir {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

#[async_trait]
impl Mailer for MailDir {
    async fn send(&self, message: &Message) -> Result<(), MailError> {
        let id = message
            .headers()
            .get_raw("Message-ID")
            .map(|v| v.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect::<String>())
            .unwrap_or_else(crate::crypto::random_token);
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| MailError::Transport(format!("{}: {e}", self.dir.display())))?;
        // Named by the Message-ID and written under a temporary name, then renamed: a reader never sees half
        // a message, and a repeated delivery of the same Message-ID replaces the file instead of adding one.
        let path = self.dir.join(format!("{id}.eml"));
        let tmp = self.dir.join(format!(".{id}.tmp"));
        tokio::fs::write(&tmp, message.formatted()).await.map_err(|e| MailError::Transport(e.to_string()))?;
        tokio::fs::rename(&tmp, &path).await.map_err(|e| MailError::Transport(e.to_string()))?;
        Ok(())
    }
}

/// SMTP from `LIFELINE_SMTP_URL`: `smtps://user:pass@host:465` (TLS), `smtp://host:587?tls=required`
/// (STARTTLS), or `smtp://host:25` (plain, for a relay on the same host).
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Smtp {
    pub fn from_url(url: &str) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Invalid(format!("smtp_url: {e}")))?
            .timeout(Some(std::time::Duration::from_secs(20)))
            .build();
        Ok(Self { transport })
    }
}

#[async_trait]
impl Mailer for Smtp {
    async fn send(&self, message: &Message) -> Result<(), MailError> {
        match self.transport.send(message.clone()).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(MailError::Invalid(e.to_string())),
            Err(e) => Err(MailError::Transport(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::OutgoingEmail;

    #[tokio::test]
    async fn a_repeated_delivery_replaces_the_file_of_the_same_message() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let folder = MailDir::new(dir.path().join("mail"));
        let email = OutgoingEmail::new("example.org", "ada@example.org", "Hello", "text".into(), "<p>html</p>".into());
        let message = crate::mail::message(&email, "Lifeline <lifeline@example.org>").unwrap_or_else(|e| panic!("{e}"));
        folder.send(&message).await.unwrap_or_else(|e| panic!("{e}"));
        folder.send(&message).await.unwrap_or_else(|e| panic!("{e}"));
        let files: Vec<_> =
            std::fs::read_dir(dir.path().join("mail")).map(|d| d.filter_map(Result::ok).collect()).unwrap_or_default();
        assert_eq!(files.len(), 1);
        let text = std::fs::read_to_string(files[0].path()).unwrap_or_default();
        assert!(text.contains(&email.message_id) && text.contains("Subject: Hello"));
    }
}
