use std::fmt;

/// Why a value from outside was refused. The message is safe to show to the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ParseError {
    pub field: &'static str,
    pub message: String,
}

impl ParseError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }
}

/// An email address, trimmed and lower-cased. Deliberately permissive beyond the basic shape
/// (`local@domain.tld`, no spaces, at most 254 characters): the mailbox itself is the real test.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let value = input.trim().to_lowercase();
        let err = |m: &str| ParseError::new("email", m);
        if value.is_empty() {
            return Err(err("is required"));
        }
        if value.len() > 254 {
            return Err(err("is longer than 254 characters"));
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>') {
            return Err(err("must not contain spaces or control characters"));
        }
        if value.chars().any(is_invisible_or_bidi) {
            return Err(err("contains an invisible or text-direction character; type the address again by hand"));
        }
        if value.chars().any(is_combining) {
            return Err(err("contains a separate accent mark; type the accented letter itself"));
        }
        if value.split(['@', '.']).any(mixes_scripts) {
            return Err(err(
                "mixes alphabets in one part (such as Latin and Cyrillic letters that look alike); check the address",
            ));
        }
        let Some((local, domain)) = value.split_once('@') else {
            return Err(err("must look like name@example.org"));
        };
        if local.is_empty()
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return Err(err("must look like name@example.org"));
        }
        Ok(Self(value))
    }

    /// An address read back from storage: it was checked when it came in. Rules added since (look-alike
    /// characters) must not make a stored person unreadable, so only the shape is insisted on here.
    pub fn from_stored(stored: &str) -> Result<Self, ParseError> {
        let value = stored.trim().to_lowercase();
        if value.is_empty() || !value.contains('@') {
            return Err(ParseError::new("email", "stored address has no @"));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A sign-in name: 1–64 characters of `a-z 0-9 . _ -`, case-insensitive (stored lower-case).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let value = input.trim().to_lowercase();
        if value.is_empty() || value.len() > 64 {
            return Err(ParseError::new("username", "must be 1 to 64 characters"));
        }
        if !value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            return Err(ParseError::new("username", "may contain only letters, digits, '.', '_' and '-'"));
        }
        Ok(Self(value))
    }

    /// The username a person gets when none is given: the local part of their email, cleaned up.
    pub fn from_email(email: &EmailAddress) -> Result<Self, ParseError> {
        let local = email.as_str().split('@').next().unwrap_or_default();
        let cleaned: String = local
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' })
            .collect();
        Self::parse(&cleaned)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Characters that show nothing or reorder what is shown: an address with one can look like another.
fn is_invisible_or_bidi(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}'
        | '\u{180B}'..='\u{180D}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{E0000}'..='\u{E007F}' | '\u{E0100}'..='\u{E01EF}')
}

/// Combining marks: "zoe" plus a combining diaeresis looks exactly like "zoë" but is another address.
fn is_combining(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}')
}

/// The alphabet a letter belongs to, for the few that hold look-alikes of each other.
#[derive(PartialEq, Eq, Clone, Copy)]
enum Script {
    Latin,
    Greek,
    Cyrillic,
    Armenian,
    Cherokee,
    /// IPA letters (ɑ, ɡ) and fullwidth forms (ａ): look like Latin, are not.
    LatinLookAlike,
    Other,
}

fn script(c: char) -> Option<Script> {
    if !c.is_alphabetic() {
        return None;
    }
    Some(match c as u32 {
        0x0041..=0x024F | 0x1E00..=0x1EFF => Script::Latin,
        0x0250..=0x02AF | 0x1D00..=0x1DBF | 0xFF21..=0xFF5A => Script::LatinLookAlike,
        0x0370..=0x03FF | 0x1F00..=0x1FFF => Script::Greek,
        0x0400..=0x052F | 0x2DE0..=0x2DFF | 0xA640..=0xA69F => Script::Cyrillic,
        0x0530..=0x058F => Script::Armenian,
        0x13A0..=0x13FF | 0xAB70..=0xABBF => Script::Cherokee,
        _ => Script::Other,
    })
}

/// One part of an address (the local part, or a domain label) with letters from two alphabets that hold
/// look-alikes of each other: the classic trick (`pаypal` with a Cyrillic а, `gօօgle` with Armenian օ).
fn mixes_scripts(part: &str) -> bool {
    let mut seen: Option<Script> = None;
    for s in part.chars().filter_map(script).filter(|s| *s != Script::Other) {
        match seen {
            Some(first) if first != s => return true,
            _ => seen = Some(s),
        }
    }
    false
}

/// A person's display name: 1–200 printable characters, surrounding space trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let value = input.trim();
        if value.is_empty() || value.chars().count() > 200 {
            return Err(ParseError::new("display_name", "must be 1 to 200 characters"));
        }
        if value.chars().any(char::is_control) {
            return Err(ParseError::new("display_name", "must not contain control characters"));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why an operator acted: 3–500 characters, surrounding space trimmed, no control characters. Kept in
/// the audit log, so it is worth making people write one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let value = input.trim();
        let length = value.chars().count();
        if !(3..=500).contains(&length) {
            return Err(ParseError::new("reason", "must be 3 to 500 characters"));
        }
        if value.chars().any(char::is_control) {
            return Err(ParseError::new("reason", "must not contain control characters"));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(EmailAddress::parse("  Ada@Example.ORG ").map(|e| e.0), Ok("ada@example.org".into()));
        for bad in
            ["", "ada", "ada@", "@example.org", "ada@example", "a b@example.org", "a@b@c.org", "ada@example.org."]
        {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(EmailAddress::parse(&format!("{}@example.org", "a".repeat(250))).is_err());
    }

    #[test]
    fn look_alike_emails_are_refused_with_a_reason() {
        for (bad, reason) in [
            ("ad\u{200B}a@example.org", "invisible"),
            ("ada@exa\u{202E}elpmaxe.org", "text-direction"),
            ("ada@\u{FEFF}example.org", "invisible"),
            ("ada@p\u{0430}ypal.com", "mixes alphabets"),
            ("\u{0430}da@example.org", "mixes alphabets"),
            ("ada@g\u{0585}\u{0585}gle.com", "mixes alphabets"),
            ("ada@ex\u{FF41}mple.org", "mixes alphabets"),
            ("zoe\u{0308}@example.org", "accent mark"),
            ("ada\u{E0041}@example.org", "invisible"),
        ] {
            let refused = EmailAddress::parse(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(refused.contains(reason), "{bad:?}: {refused:?}");
        }
        // One alphabet per part is fine, whichever it is.
        for good in ["иван@пример.рф", "иван@example.org", "zoë@example.org", "名前@example.jp"] {
            assert!(EmailAddress::parse(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn reasons_are_short_sentences() {
        assert_eq!(
            Reason::parse("  called back on file number ").map(|r| r.0),
            Ok("called back on file number".into())
        );
        assert!(Reason::parse("  ").is_err());
        assert!(Reason::parse("ok\nforged line").is_err());
        assert!(Reason::parse(&"x".repeat(501)).is_err());
    }

    #[test]
    fn usernames_are_case_insensitive_and_restricted() {
        assert_eq!(Username::parse("Ada.Lovelace").map(|u| u.0), Ok("ada.lovelace".into()));
        assert!(Username::parse("ada lovelace").is_err());
        assert!(Username::parse("").is_err());
        let email = EmailAddress::parse("o'brien+it@example.org").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(Username::from_email(&email).map(|u| u.0), Ok("o-brien-it".into()));
    }
}
