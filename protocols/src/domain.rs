//! Signing domains: one per signed message kind, so no signature can be replayed as another kind.

/// The kind of message a signature is for; each has its own domain string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Domain {
    /// [`crate::v1::SignedEnvelope`].
    Envelope,
    /// [`crate::v1::CapabilityAd`].
    CapabilityAd,
    /// [`crate::v1::QueryResponse`].
    QueryResponse,
    /// [`crate::v1::WeightCommit`].
    WeightCommit,
    /// [`crate::v1::WeightReveal`].
    WeightReveal,
    /// [`crate::v1::Proposal`].
    Proposal,
    /// [`crate::v1::Vote`] (prevotes and precommits; the vote type is part of what is signed).
    Vote,
    /// [`crate::v1::Transaction`].
    Transaction,
    /// [`crate::v1::HotkeyConsent`] (a hotkey's consent inside a registration).
    HotkeyConsent,
    /// [`crate::v1::FinalizerConsent`] (a hotkey's consent inside a finalizer declaration).
    FinalizerConsent,
    /// [`crate::v1::SwapConsent`] (a new hotkey's consent inside a hotkey swap).
    SwapConsent,
}

impl Domain {
    /// Every domain, for tests and tooling.
    pub const ALL: [Domain; 11] = [
        Domain::Envelope,
        Domain::CapabilityAd,
        Domain::QueryResponse,
        Domain::WeightCommit,
        Domain::WeightReveal,
        Domain::Proposal,
        Domain::Vote,
        Domain::Transaction,
        Domain::HotkeyConsent,
        Domain::FinalizerConsent,
        Domain::SwapConsent,
    ];

    /// The domain string used as blake3's key-derivation context.
    pub const fn as_str(self) -> &'static str {
        match self {
            Domain::Envelope => "meshmind/v1/envelope",
            Domain::CapabilityAd => "meshmind/v1/capability_ad",
            Domain::QueryResponse => "meshmind/v1/query_response",
            Domain::WeightCommit => "meshmind/v1/weight_commit",
            Domain::WeightReveal => "meshmind/v1/weight_reveal",
            Domain::Proposal => "meshmind/v1/proposal",
            Domain::Vote => "meshmind/v1/vote",
            Domain::Transaction => "meshmind/v1/transaction",
            Domain::HotkeyConsent => "meshmind/v1/hotkey_consent",
            Domain::FinalizerConsent => "meshmind/v1/finalizer_consent",
            Domain::SwapConsent => "meshmind/v1/swap_consent",
        }
    }
}

impl std::fmt::Display for Domain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
