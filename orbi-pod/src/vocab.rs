//! Closed vocabularies of this crate: rejection codes, checks, states and trace kinds.

/// Defines a closed string vocabulary: the enum, `ALL`, `as_str`, `Display` and `FromStr`.
///
/// (orbi-types has the same shape for wire enums, with serde and schemars on top; that macro is
/// private to its crate, and these vocabularies need neither.)
macro_rules! vocabulary {
    (
        $(#[$doc:meta])*
        pub enum $name:ident : $kind:literal {
            $( $(#[$vdoc:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vdoc])* $variant ),+
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable text.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = orbi_types::UnknownVariant;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err(orbi_types::UnknownVariant {
                        kind: $kind,
                        value: text.to_owned(),
                        expected: concat!($($text, " "),+),
                    }),
                }
            }
        }
    };
}
pub(crate) use vocabulary;

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
