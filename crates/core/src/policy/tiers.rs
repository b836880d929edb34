//! Privilege tiers (SPEC §1): every person has a rank, and an actor may act only on lower ranks.

use crate::domain::Grant;

/// DPA level (0–3), plus one with expert mode; a directory admin ranks 5.
pub fn rank(grant: &Grant) -> u8 {
    if grant.directory_admin { 5 } else { grant.dpa_level.min(3) + u8::from(grant.expert_mode) }
}

/// May someone with `actor` act on someone with `subject`? Never on equals, never upwards.
pub fn outranks(actor: &Grant, subject: &Grant) -> bool {
    rank(actor) > rank(subject)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(dpa_level: u8, expert_mode: bool, directory_admin: bool) -> Grant {
        Grant { dpa_level, expert_mode, directory_admin, auditor: false }
    }

    #[test]
    fn ranks_follow_the_spec() {
        assert_eq!(rank(&Grant::default()), 0);
        assert_eq!(rank(&g(2, false, false)), 2);
        assert_eq!(rank(&g(3, true, false)), 4);
        assert_eq!(rank(&g(0, false, true)), 5);
    }

    #[test]
    fn nobody_acts_on_equals_or_superiors() {
        assert!(!outranks(&g(2, false, false), &g(3, false, false)));
        assert!(!outranks(&g(2, false, false), &g(2, false, false)));
        assert!(!outranks(&g(3, false, false), &g(2, true, false)));
        assert!(outranks(&g(3, true, false), &g(2, true, false)));
    }
}
