//! Closed vocabularies of this crate: rejection codes, checks, states and trace kinds.

pub(crate) use orbi_types::vocabulary;

#[cfg(test)]
mod tests {
    use crate::{AttachmentState, Check, RejectionCode, TraceKind};

    #[test]
    fn every_vocabulary_round_trips_through_text() {
        for code in RejectionCode::ALL {
            assert_eq!(code.as_str().parse::<RejectionCode>(), Ok(*code));
        }
        for check in Check::ALL {
            assert_eq!(check.to_string().parse::<Check>(), Ok(*check));
        }
        for state in AttachmentState::ALL {
            assert_eq!(state.as_str().parse::<AttachmentState>(), Ok(*state));
        }
        for kind in TraceKind::ALL {
            assert_eq!(kind.as_str().parse::<TraceKind>(), Ok(*kind));
        }
        let err = "E_NOPE".parse::<RejectionCode>().unwrap_err();
        assert!(err.to_string().contains("E_NOPE"));
    }
}
