use super::ParseError;
use std::fmt;

/// What went wrong, as the person asking for help chose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProblemType {
    // snake_case alone would say `lost2fa`; the name everywhere else (forms, store, API) is `lost_2fa`.
    #[serde(rename = "lost_2fa")]
    Lost2fa,
    ForgottenPassword,
    LockedOut,
    Other,
}

impl ProblemType {
    pub const ALL: [ProblemType; 4] = [Self::Lost2fa, Self::ForgottenPassword, Self::LockedOut, Self::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lost2fa => "lost_2fa",
            Self::ForgottenPassword => "forgotten_password",
            Self::LockedOut => "locked_out",
            Self::Other => "other",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Lost2fa => "Lost 2FA device or backup codes",
            Self::ForgottenPassword => "Forgotten password",
            Self::LockedOut => "Account locked out",
            Self::Other => "Other access issue",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s.trim())
            .ok_or_else(|| ParseError::new("type", "must be one of lost_2fa, forgotten_password, locked_out, other"))
    }
}

impl fmt::Display for ProblemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A short free-text description: at most 500 characters, no control characters but line breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    pub const MAX_CHARS: usize = 500;

    pub fn parse(input: &str) -> Result<Option<Self>, ParseError> {
        let text = input.trim();
        if text.is_empty() {
            return Ok(None);
        }
        if text.chars().count() > Self::MAX_CHARS {
            return Err(ParseError::new("description", format!("must be at most {} characters", Self::MAX_CHARS)));
        }
        if text.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
            return Err(ParseError::new("description", "must not contain control characters"));
        }
        Ok(Some(Self(text.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A reference a person can read aloud over the phone: `AR-` and two groups of four symbols from an
/// alphabet without look-alikes (no 0/O, 1/I/L, U), e.g. `AR-7KQ2-MX4P`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReferenceId(String);

impl ReferenceId {
    /// The reference for a freshly generated code of two groups (`7KQ2-MX4P`).
    pub fn from_code(code: &str) -> Self {
        Self(format!("AR-{code}"))
    }

    /// Accepts any case, and missing or extra dashes and spaces.
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let symbols: String =
            input.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect();
        let body = symbols.strip_prefix("AR").unwrap_or(&symbols);
        let valid = body.len() == 8 && body.chars().all(|c| "23456789ABCDEFGHJKMNPQRSTVWXYZ".contains(c));
        if !valid {
            return Err(ParseError::new("reference", "must look like AR-7KQ2-MX4P"));
        }
        Ok(Self(format!("AR-{}-{}", &body[..4], &body[4..])))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReferenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a request is. Stored as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Stored; not yet processed (resolved, dossier, emails).
    Received,
    /// Waiting for an administrator.
    Open,
    /// A repeat added to an earlier open request.
    Joined,
    Resolved,
    Dismissed,
}

impl RequestStatus {
    pub const ALL: [Self; 5] = [Self::Received, Self::Open, Self::Joined, Self::Resolved, Self::Dismissed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Open => "open",
            Self::Joined => "joined",
            Self::Resolved => "resolved",
            Self::Dismissed => "dismissed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_types_have_one_name_in_json_and_everywhere_else() {
        for problem in ProblemType::ALL {
            assert_eq!(serde_json::to_value(problem).unwrap(), problem.as_str());
            assert_eq!(ProblemType::parse(problem.as_str()).unwrap(), problem);
        }
    }

    #[test]
    fn statuses_are_stored_by_name_and_read_back() {
        for status in RequestStatus::ALL {
            assert_eq!(RequestStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(RequestStatus::parse("closed"), None);
    }

    #[test]
    fn references_are_readable_and_parse_back_however_typed() {
        let r = ReferenceId::from_code(&crate::crypto::typed_code(2));
        assert!(r.as_str().starts_with("AR-") && r.as_str().len() == 12, "{r}");
        assert_eq!(ReferenceId::parse(&r.as_str().to_lowercase().replace('-', " ")), Ok(r.clone()));
        assert_eq!(ReferenceId::parse("7kq2mx4p").map(|r| r.0), Ok("AR-7KQ2-MX4P".into()));
        for bad in ["", "AR-7KQ2", "AR-0OIL-1234", "AR-7KQ2-MX4P-9"] {
            assert!(ReferenceId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn problem_types_and_descriptions_are_checked() {
        assert_eq!(ProblemType::parse("lost_2fa"), Ok(ProblemType::Lost2fa));
        assert!(ProblemType::parse("hacked").is_err());
        assert_eq!(Description::parse("   "), Ok(None));
        assert!(Description::parse(&"x".repeat(501)).is_err());
        assert!(Description::parse("bell\u{7}").is_err());
    }
}
