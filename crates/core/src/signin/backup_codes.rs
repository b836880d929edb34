//! Backup codes: ten single-use codes, shown once, stored only as keyed hashes.
//!
//! Each code is 16 symbols from a 30-symbol alphabet without look-alikes (~78 bits). They are typed by
//! hand, so they are shorter than the 128 bits of link tokens: with the account locking after a handful
//! of wrong codes, an attacker's chance is a few guesses in 2^78 (SPEC §4 allows typed codes to be sized
//! by their lifetime and attempt limit; see docs/decisions.md).

use crate::crypto::{Keys, TokenHash, typed_code};

pub const BACKUP_CODE_COUNT: usize = 10;

/// Fresh codes and their hashes.
pub fn generate(keys: &Keys) -> (Vec<String>, Vec<TokenHash>) {
    let codes: Vec<String> = (0..BACKUP_CODE_COUNT).map(|_| typed_code(4)).collect();
    let hashes = codes.iter().map(|c| TokenHash::of(keys, "backup-code", &normalise_backup_code(c))).collect();
    (codes, hashes)
}

/// Upper-case, without dashes and spaces: how people type codes varies, the code does not.
pub fn normalise_backup_code(input: &str) -> String {
    input.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    #[test]
    fn codes_are_distinct_and_their_hashes_match_normalised_input() {
        let keys = Keys::new(&MasterKey::from_hex(&"11".repeat(32)).unwrap_or_else(|e| panic!("{e}")));
        let (codes, hashes) = generate(&keys);
        assert_eq!(codes.len(), 10);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), 10);
        let typed = format!(" {} ", codes[3].to_lowercase().replace('-', " "));
        assert_eq!(TokenHash::of(&keys, "backup-code", &normalise_backup_code(&typed)), hashes[3]);
    }
}
