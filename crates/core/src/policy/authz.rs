//! The decision behind every proof of authorisation (see `authz`): pure, over facts read just before.
//!
//! In order: the actor is an active person with a second factor; the action's permission is in their grant
//! (the table in `permissions`); an action on a person names one, who is not the actor and ranks below them
//! (`tiers`). The system (the CLI on the host, background work) stands outside the grants and tiers, but an
//! action on a person must still name one.

use super::permissions::{Permission, PermissionSettings, allows};
use super::tiers::outranks;
use crate::domain::{Grant, PersonId};

/// What is known of an account acting in the console or API, read at the moment of asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorFacts {
    pub person: PersonId,
    pub grant: Grant,
    /// A disabled person keeps no power, even with a session still open.
    pub active: bool,
    pub has_second_factor: bool,
    /// The acting account is locked (read for API tokens: a session of a locked account ended with the lock,
    /// or was made before a lock by strangers' guesses, which must not lock the person out of their console).
    pub locked: bool,
    /// Has anyone reporting to them (read only for actions guarded by the reporting line).
    pub has_reports: bool,
    /// The subject is in their reporting line, directly or not (read only for those actions, with a subject).
    pub manages_subject: bool,
}

/// Why an action was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("This account is disabled.")]
    Inactive,
    /// An API token of a locked account: the lock stops every way in, a token too.
    #[error("This account is locked.")]
    Locked,
    #[error("The console needs two-step verification: set up an authenticator app first.")]
    NoSecondFactor,
    #[error("You do not have permission to do this.")]
    NotPermitted,
    #[error("Nobody may do this to their own account; ask another administrator.")]
    Themself,
    /// Worded like any refusal about a person: it must not tell a low-ranked admin who holds power.
    #[error("You may not act on this person; ask another administrator.")]
    Outranked,
    /// An action on a person was asked without one, or one without a person was asked with one.
    #[error("This action needs the person it acts on.")]
    Subject,
}

/// May `actor` (`None`: the system) do what `permission` guards, to `subject` (a person and their grant)
/// when `on_person`?
pub fn decide(
    actor: Option<&ActorFacts>,
    permission: Permission,
    on_person: bool,
    subject: Option<(PersonId, &Grant)>,
    settings: &PermissionSettings,
) -> Result<(), Denial> {
    if on_person != subject.is_some() {
        return Err(Denial::Subject);
    }
    let Some(actor) = actor else { return Ok(()) };
    if !actor.active {
        return Err(Denial::Inactive);
    }
    if actor.locked {
        return Err(Denial::Locked);
    }
    if !actor.has_second_factor {
        return Err(Denial::NoSecondFactor);
    }
    if permission == Permission::ManageReports {
        // SPEC §1: a manager acts only on people in their own reporting line, of rank 0, never on themself.
        return match subject {
            None if actor.has_reports => Ok(()),
            None => Err(Denial::NotPermitted),
            Some((person, _)) if person == actor.person => Err(Denial::Themself),
            Some(_) if !actor.manages_subject => Err(Denial::NotPermitted),
            // Rank 0 and nothing else: an auditor's grant ranks 0 but is not a manager's to hand over.
            Some((_, grant)) if *grant != Grant::default() => Err(Denial::Outranked),
            Some(_) => Ok(()),
        };
    }
    if !allows(&actor.grant, permission, settings) {
        return Err(Denial::NotPermitted);
    }
    if let Some((person, grant)) = subject {
        if person == actor.person {
            return Err(Denial::Themself);
        }
        if !outranks(&actor.grant, grant) {
            return Err(Denial::Outranked);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PersonId;

    fn admin(dpa_level: u8) -> ActorFacts {
        ActorFacts {
            person: PersonId(1),
            grant: Grant { dpa_level, ..Default::default() },
            active: true,
            has_second_factor: true,
            locked: false,
            has_reports: false,
            manages_subject: false,
        }
    }

    const S: fn() -> PermissionSettings = PermissionSettings::default;

    #[test]
    fn an_admin_acts_only_below_their_rank_and_never_on_themself() {
        let staff = Grant::default();
        let peer = Grant { dpa_level: 2, ..Default::default() };
        let unlock = Permission::Recovery(crate::policy::permissions::RecoveryAction::UnlockPerson);
        assert_eq!(decide(Some(&admin(2)), unlock, true, Some((PersonId(7), &staff)), &S()), Ok(()));
        assert_eq!(decide(Some(&admin(2)), unlock, true, Some((PersonId(7), &peer)), &S()), Err(Denial::Outranked));
        assert_eq!(decide(Some(&admin(2)), unlock, true, Some((PersonId(1), &staff)), &S()), Err(Denial::Themself));
    }

    #[test]
    fn a_manager_acts_only_on_rank_zero_people_of_their_own_line_and_never_on_themself() {
        let manage = Permission::ManageReports;
        let mona = ActorFacts { has_reports: true, manages_subject: true, ..admin(0) };
        let staff = Grant::default();
        let helpdesk = Grant { dpa_level: 1, ..Default::default() };
        assert_eq!(decide(Some(&mona), manage, false, None, &S()), Ok(()));
        assert_eq!(decide(Some(&mona), manage, true, Some((PersonId(7), &staff)), &S()), Ok(()));
        assert_eq!(decide(Some(&mona), manage, true, Some((PersonId(7), &helpdesk)), &S()), Err(Denial::Outranked));
        let auditor = Grant { auditor: true, ..Default::default() };
        assert_eq!(decide(Some(&mona), manage, true, Some((PersonId(7), &auditor)), &S()), Err(Denial::Outranked));
        assert_eq!(decide(Some(&mona), manage, true, Some((PersonId(1), &staff)), &S()), Err(Denial::Themself));
        let outside = ActorFacts { manages_subject: false, ..mona.clone() };
        assert_eq!(decide(Some(&outside), manage, true, Some((PersonId(7), &staff)), &S()), Err(Denial::NotPermitted));
        // No reports, no portal: and a grant, however high, does not make anyone a manager.
        assert_eq!(decide(Some(&admin(3)), manage, false, None, &S()), Err(Denial::NotPermitted));
        let no_mfa = ActorFacts { has_second_factor: false, ..mona };
        assert_eq!(decide(Some(&no_mfa), manage, false, None, &S()), Err(Denial::NoSecondFactor));
    }

    #[test]
    fn power_needs_an_active_person_with_a_second_factor_and_the_permission() {
        let staff = Grant::default();
        let unlock = Permission::Recovery(crate::policy::permissions::RecoveryAction::UnlockPerson);
        let disabled = ActorFacts { active: false, ..admin(3) };
        let no_mfa = ActorFacts { has_second_factor: false, ..admin(3) };
        let locked = ActorFacts { locked: true, ..admin(3) };
        assert_eq!(decide(Some(&locked), unlock, true, Some((PersonId(7), &staff)), &S()), Err(Denial::Locked));
        assert_eq!(decide(Some(&disabled), unlock, true, Some((PersonId(7), &staff)), &S()), Err(Denial::Inactive));
        assert_eq!(decide(Some(&no_mfa), unlock, true, Some((PersonId(7), &staff)), &S()), Err(Denial::NoSecondFactor));
        assert_eq!(decide(Some(&admin(0)), unlock, true, Some((PersonId(7), &staff)), &S()), Err(Denial::NotPermitted));
        assert_eq!(
            decide(Some(&admin(3)), Permission::ManageGrants, true, Some((PersonId(7), &staff)), &S()),
            Err(Denial::NotPermitted)
        );
    }

    #[test]
    fn the_system_is_outside_tiers_but_still_names_its_subject() {
        let top = Grant { directory_admin: true, ..Default::default() };
        assert_eq!(decide(None, Permission::ManageGrants, true, Some((PersonId(7), &top)), &S()), Ok(()));
        assert_eq!(decide(None, Permission::ManageGrants, true, None, &S()), Err(Denial::Subject));
        assert_eq!(
            decide(None, Permission::ViewRequests, false, Some((PersonId(7), &top)), &S()),
            Err(Denial::Subject)
        );
    }

    /// Every recovery action × every kind of actor × every rank of subject: allowed exactly when the actor
    /// meets SPEC §1's table for the action and outranks the subject, never on themself.
    #[test]
    fn the_permission_matrix_is_the_table_and_the_tiers() {
        use crate::policy::permissions::RecoveryAction;
        let needs = |action: RecoveryAction| match action.name() {
            "send-access-email" | "send-magic-link" | "unlock" | "unlock-person" | "unlock-qa" => (1, false),
            "send-recovery-code" | "issue-temporary-access-pass" | "issue-enrolment-code" => (2, true),
            _ => (2, false),
        };
        let mut actors = Vec::new();
        for dpa_level in 0..=3 {
            for expert_mode in [false, true] {
                actors.push(Grant { dpa_level, expert_mode, ..Default::default() });
            }
        }
        actors.push(Grant { directory_admin: true, ..Default::default() });
        actors.push(Grant { directory_admin: true, dpa_level: 3, expert_mode: true, auditor: true });
        let subjects: Vec<Grant> = actors.clone();
        let settings = PermissionSettings::default();
        let mut allowed = 0;
        for action in RecoveryAction::ALL {
            let (dpa, expert) = needs(action);
            for actor in &actors {
                let facts = ActorFacts { grant: *actor, ..admin(0) };
                for (n, subject) in subjects.iter().enumerate() {
                    for person in [PersonId(1), PersonId(100 + n as i64)] {
                        let got = decide(
                            Some(&facts),
                            Permission::Recovery(action),
                            true,
                            Some((person, subject)),
                            &settings,
                        );
                        let meets = actor.dpa_level >= dpa && (!expert || actor.expert_mode);
                        let expected = if !meets {
                            Err(Denial::NotPermitted)
                        } else if person == facts.person {
                            Err(Denial::Themself)
                        } else if super::super::tiers::rank(actor) <= super::super::tiers::rank(subject) {
                            Err(Denial::Outranked)
                        } else {
                            Ok(())
                        };
                        assert_eq!(got, expected, "{} by {actor:?} on {subject:?} ({person:?})", action.name());
                        allowed += usize::from(got.is_ok());
                    }
                }
            }
        }
        assert!(allowed > 0, "the matrix allows something");
    }
}
