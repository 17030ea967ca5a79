//! Who is calling and what they may do: bearer tokens (kept only as SHA-256 digests) to a
//! [`Principal`], and the one table of which principal may do which [`Action`]. Whether a
//! crew's token covers a particular ticket is decided by the dispatcher, which knows the
//! ticket's crew.

use crate::config::{Role, TokenConfig};
use crate::domain::{Actor, CrewId};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::RwLock;
use subtle::ConstantTimeEq;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Agent,
    Supervisor,
    Admin,
    /// A crew token acts only for its own crew and that crew's jobs.
    Crew(CrewId),
}

impl Principal {
    /// The actor recorded on events this principal causes. Admins administer; they cause no
    /// ticket or crew events.
    pub fn actor(&self) -> Option<Actor> {
        match self {
            Principal::Agent => Some(Actor::Agent),
            Principal::Supervisor => Some(Actor::Supervisor),
            Principal::Crew(crew) => Some(Actor::Crew(crew.clone())),
            Principal::Admin => None,
        }
    }

    pub fn role(&self) -> Role {
        match self {
            Principal::Agent => Role::Agent,
            Principal::Supervisor => Role::Supervisor,
            Principal::Admin => Role::Admin,
            Principal::Crew(_) => Role::Crew,
        }
    }
}

/// Everything the API lets a caller do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    CreateTicket,
    ListTickets,
    /// Crews: only tickets given to their crew (checked by the dispatcher).
    ReadTicket,
    CancelTicket,
    CloseTicket,
    /// ack, reject, depart, arrive, restore, return: the assigned crew only.
    CrewStep,
    /// A crew's job list: the crew itself, or a supervisor or admin.
    ReadCrewJobs,
    /// Position and duty reports: the crew itself.
    ReportForCrew,
    ListStations,
    ListCrews,
    /// SLA summary and reliability indices.
    ReadReports,
    MintCrewToken,
    /// Withdraws every minted token of a crew (a lost or stolen phone).
    RevokeCrewTokens,
    /// An online backup of the embedded store.
    BackUpStore,
    /// The live event stream (`/v1/events`).
    WatchEvents,
    /// Storm mode on, off, or back to automatic.
    SwitchStorm,
}

impl Action {
    pub const ALL: [Action; 16] = [
        Action::CreateTicket,
        Action::ListTickets,
        Action::ReadTicket,
        Action::CancelTicket,
        Action::CloseTicket,
        Action::CrewStep,
        Action::ReadCrewJobs,
        Action::ReportForCrew,
        Action::ListStations,
        Action::ListCrews,
        Action::ReadReports,
        Action::MintCrewToken,
        Action::RevokeCrewTokens,
        Action::BackUpStore,
        Action::WatchEvents,
        Action::SwitchStorm,
    ];
}

/// The authorization matrix of the contract, in one place.
pub fn permits(role: Role, action: Action) -> bool {
    use Action as A;
    use Role as R;
    match action {
        A::CreateTicket | A::ListTickets | A::CancelTicket => {
            matches!(role, R::Agent | R::Supervisor)
        }
        A::ReadTicket => matches!(role, R::Agent | R::Supervisor | R::Crew),
        A::CloseTicket => role == R::Agent,
        A::CrewStep | A::ReportForCrew => role == R::Crew,
        A::ReadCrewJobs => matches!(role, R::Crew | R::Supervisor | R::Admin),
        // The control room's call; an event records it as the supervisor's.
        A::SwitchStorm => role == R::Supervisor,
        A::ListStations | A::ListCrews | A::ReadReports | A::WatchEvents => {
            matches!(role, R::Supervisor | R::Admin)
        }
        A::MintCrewToken | A::RevokeCrewTokens | A::BackUpStore => role == R::Admin,
    }
}

pub type Digest32 = [u8; 32];

pub fn sha256(bytes: &[u8]) -> Digest32 {
    Sha256::digest(bytes).into()
}

/// The tokens the service accepts: the configured ones and the crew tokens minted since.
#[derive(Debug, Default)]
pub struct TokenBook {
    configured: Vec<(Digest32, Principal)>,
    /// Minted crew tokens by digest. Looked up by hash: the lookup key is a SHA-256 digest of
    /// the presented token, so its timing reveals nothing usable about a valid token.
    crews: RwLock<HashMap<Digest32, CrewId>>,
}

impl TokenBook {
    pub fn new(tokens: &[TokenConfig]) -> Self {
        let configured = tokens
            .iter()
            .map(|t| {
                let principal = match (t.role, &t.crew_id) {
                    (Role::Agent, _) => Principal::Agent,
                    (Role::Supervisor, _) => Principal::Supervisor,
                    (Role::Admin, _) => Principal::Admin,
                    // Validation guarantees a crew id; an empty one matches no crew.
                    (Role::Crew, crew) => {
                        Principal::Crew(CrewId::new(crew.clone().unwrap_or_default()))
                    }
                };
                (sha256(t.token.as_bytes()), principal)
            })
            .collect();
        Self {
            configured,
            crews: RwLock::default(),
        }
    }

    pub fn add_crew_token(&self, digest: Digest32, crew: CrewId) {
        let mut crews = self
            .crews
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        crews.insert(digest, crew);
    }

    /// Puts `records` in place of every minted token known so far: what a rebuild from the
    /// store recovered, so a token revoked meanwhile does not linger.
    pub fn set_crew_tokens(&self, records: impl IntoIterator<Item = (Digest32, CrewId)>) {
        let mut crews = self
            .crews
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *crews = records.into_iter().collect();
    }

    /// The digests of the minted tokens bound to `crew` (configured tokens are not minted:
    /// they go with the token file).
    pub fn minted_for(&self, crew: &CrewId) -> Vec<Digest32> {
        let crews = self
            .crews
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        crews
            .iter()
            .filter(|(_, holder)| *holder == crew)
            .map(|(digest, _)| *digest)
            .collect()
    }

    /// Forgets the minted tokens with these digests. Nothing to forget takes no lock: the
    /// instances that follow the log call this for every batch they apply, and writing the
    /// book would stall every request's authentication for nothing.
    pub fn remove_crew_tokens<'a>(&self, digests: impl IntoIterator<Item = &'a Digest32>) {
        let mut digests = digests.into_iter().peekable();
        if digests.peek().is_none() {
            return;
        }
        let mut crews = self
            .crews
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for digest in digests {
            crews.remove(digest);
        }
    }

    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        let digest = sha256(token.as_bytes());
        // Every configured digest is compared in constant time and the loop never stops
        // early, so the time taken says nothing about which token (if any) matched.
        let mut found = None;
        for (candidate, principal) in &self.configured {
            if bool::from(candidate[..].ct_eq(&digest[..])) && found.is_none() {
                found = Some(principal.clone());
            }
        }
        if found.is_some() {
            return found;
        }
        let crews = self
            .crews
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        crews.get(&digest).cloned().map(Principal::Crew)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(token: &str, role: Role) -> TokenConfig {
        TokenConfig {
            token: token.into(),
            role,
            crew_id: (role == Role::Crew).then(|| "C1".into()),
        }
    }

    #[test]
    fn tokens_resolve_to_their_principal_and_nothing_else() {
        let book = TokenBook::new(&[
            token("agent-token-0123456789", Role::Agent),
            token("crew-token-0123456789", Role::Crew),
        ]);
        assert_eq!(
            book.authenticate("agent-token-0123456789"),
            Some(Principal::Agent)
        );
        assert_eq!(
            book.authenticate("crew-token-0123456789"),
            Some(Principal::Crew(CrewId::new("C1")))
        );
        assert_eq!(book.authenticate("agent-token-012345678"), None);
        assert_eq!(book.authenticate(""), None);
        book.add_crew_token(sha256(b"minted"), CrewId::new("C9"));
        assert_eq!(
            book.authenticate("minted"),
            Some(Principal::Crew(CrewId::new("C9")))
        );
    }

    #[test]
    fn a_revoked_token_opens_nothing_and_the_crews_other_tokens_go_with_it() {
        let book = TokenBook::new(&[token("crew-token-0123456789", Role::Crew)]);
        book.add_crew_token(sha256(b"lost phone"), CrewId::new("C1"));
        book.add_crew_token(sha256(b"spare phone"), CrewId::new("C1"));
        book.add_crew_token(sha256(b"other crew"), CrewId::new("C2"));
        let mut minted = book.minted_for(&CrewId::new("C1"));
        minted.sort();
        let mut expected = vec![sha256(b"lost phone"), sha256(b"spare phone")];
        expected.sort();
        // The configured crew token is the token file's, not minted: not listed.
        assert_eq!(minted, expected);
        book.remove_crew_tokens(&minted);
        assert_eq!(book.authenticate("lost phone"), None);
        assert_eq!(book.authenticate("spare phone"), None);
        assert_eq!(
            book.authenticate("other crew"),
            Some(Principal::Crew(CrewId::new("C2")))
        );
        assert_eq!(
            book.authenticate("crew-token-0123456789"),
            Some(Principal::Crew(CrewId::new("C1")))
        );
        // A rebuild replaces what was minted with what the store recovered.
        book.set_crew_tokens([(sha256(b"recovered"), CrewId::new("C3"))]);
        assert_eq!(book.authenticate("other crew"), None);
        assert_eq!(
            book.authenticate("recovered"),
            Some(Principal::Crew(CrewId::new("C3")))
        );
    }

    #[test]
    fn the_matrix_follows_the_contract() {
        use Role::*;
        let allowed = |action| {
            [Agent, Crew, Supervisor, Admin]
                .into_iter()
                .filter(|r| permits(*r, action))
                .collect::<Vec<_>>()
        };
        assert_eq!(allowed(Action::CreateTicket), vec![Agent, Supervisor]);
        assert_eq!(allowed(Action::ReadTicket), vec![Agent, Crew, Supervisor]);
        assert_eq!(allowed(Action::CloseTicket), vec![Agent]);
        assert_eq!(allowed(Action::CrewStep), vec![Crew]);
        assert_eq!(allowed(Action::ListCrews), vec![Supervisor, Admin]);
        assert_eq!(allowed(Action::ReadReports), vec![Supervisor, Admin]);
        assert_eq!(allowed(Action::WatchEvents), vec![Supervisor, Admin]);
        assert_eq!(allowed(Action::SwitchStorm), vec![Supervisor]);
        assert_eq!(allowed(Action::MintCrewToken), vec![Admin]);
        assert_eq!(allowed(Action::RevokeCrewTokens), vec![Admin]);
        assert_eq!(allowed(Action::BackUpStore), vec![Admin]);
        // Every action is open to someone.
        for action in Action::ALL {
            assert!(!allowed(action).is_empty(), "{action:?}");
        }
    }
}
